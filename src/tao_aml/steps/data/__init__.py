"""Data steps (CPU node): downloads with checksums, NGC models, WIDER FACE to KITTI, KITTI checks, COCO subsets
and calibration images, and the label/image formats TAO reads.
"""
