"""Azure ML components and pipelines for NVIDIA TAO 5.0 (DetectNet_v2 FaceNet, BPNet BodyPoseNet)."""

__version__ = "0.1.0"
