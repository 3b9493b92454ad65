"""A tiny KITTI data set with three classes, images of mixed sizes and formats, as a user would bring."""

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("car", "cyclist", "pedestrian")


def kitti_line(name: str, box: tuple) -> str:
    return "{} 0.00 0 -1.57 {:.2f} {:.2f} {:.2f} {:.2f} 1.50 1.60 3.70 1.0 1.5 20.0 -1.55\n".format(name, *box)


def make_kitti(root: Path, count: int = 12, size: tuple = (160, 96), extra_class: str | None = None) -> Path:
    """`root/images/*.png|jpg` and `root/labels/*.txt`: every class in several images; every third image
    at another size (letterboxed by the data step), every fourth a JPEG."""
    rng = np.random.default_rng(7)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for index in range(count):
        width, height = (size[0] * 2, size[1] * 3) if index % 3 == 0 else size
        pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        extension = ".jpg" if index % 4 == 1 else ".png"
        Image.fromarray(pixels).save(root / "images" / f"frame_{index:03d}{extension}")
        lines = [kitti_line(CLASSES[(index + k) % 3], (5 + k, 6 + k, width / 2 + k, height / 2 + k)) for k in range(2)]
        if extra_class and index % 2 == 0:
            lines.append(kitti_line(extra_class, (1, 1, 10, 10)))
        (root / "labels" / f"frame_{index:03d}.txt").write_text("".join(lines))
    return root
