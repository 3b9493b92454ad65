"""Serving a DetectNet_v2 model asset (FaceNet or your own classes): decoding (detectnet_v2), local and
endpoint inference (runtime).

User-side code (Python 3.10+, numpy; onnxruntime for `tao-aml predict --local`): pip install 'tao-aml[serve]'.
"""
