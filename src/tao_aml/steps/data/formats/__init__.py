"""The data formats the steps read, each checked field by field in one place.

`wider` (WIDER FACE annotation files), `coco` (COCO keypoint files) and `kitti` (KITTI label folders):
every problem is a StepError naming the file and the line, entry or id, and the field.
"""
