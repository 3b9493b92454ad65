"""COCO person-keypoint look-alikes for the tests: the generator of tao_aml.simulate.data (what `tao-aml
rehearse` generates; its docstring says what image i holds) and the three download zips.

    root = make_coco(tmp_path / "coco", train=8, val=4)       # train2017/, val2017/, annotations/
    zips = make_coco_zips(server.root, train=8, val=4)        # the three COCO download zips
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from tao_aml.simulate.data import file_name, make_coco

__all__ = ["file_name", "make_coco", "make_coco_zips"]


def make_coco_zips(folder: Path, train: int = 8, val: int = 4) -> dict[str, Path]:
    """train2017.zip, val2017.zip and annotations_trainval2017.zip, laid out as cocodataset.org's."""
    root = make_coco(folder / "unzipped", train, val)
    zips = {}
    for name, members in (("train2017.zip", ["train2017"]), ("val2017.zip", ["val2017"]),
                          ("annotations_trainval2017.zip", ["annotations"])):
        zips[name] = folder / name
        with zipfile.ZipFile(zips[name], "w") as archive:
            for member in members:
                for path in sorted((root / member).iterdir()):
                    archive.write(path, f"{member}/{path.name}")
    return zips
