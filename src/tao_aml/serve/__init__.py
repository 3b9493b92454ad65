"""Serving a DetectNet_v2 model asset (FaceNet or your own classes): decoding (detectnet_v2), local and
endpoint inference (runtime).

User-side code (Python 3.10+, numpy; onnxruntime for `tao-aml predict --local`): the `serve` extra.
"""

# The project is not on PyPI: installing it by name would fetch whatever package holds that name there.
INSTALL = "pip install -e '.[serve]' in this repository's folder"
