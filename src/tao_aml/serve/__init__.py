"""Serving a FaceNet model asset: DetectNet_v2 decoding (detectnet_v2), local and endpoint inference (runtime).

User-side code (Python 3.10+, numpy; onnxruntime for `tao-aml predict --local`): pip install 'tao-aml[serve]'.
"""
