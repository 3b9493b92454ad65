"""Data shaped like the real thing, generated for `tao-aml rehearse` and the tests: WIDER FACE, COCO person
keypoints and a user's KITTI folder, each laid out as the pipeline's data input expects it.

WIDER (facenet's wider_data): WIDER_<split>/images/<event>/<name>.jpg and wider_face_split/ annotation files
with the real file's quirks (trailing spaces, a count of 0 followed by a line of ten zeros, faces flagged
invalid, boxes crossing the border, grayscale JPEGs). COCO (bodypose's coco_data): train2017/, val2017/ and
annotations/person_keypoints_<split>2017.json; image i of a split cycles through what the real files hold:
  i % 4 == 0  no annotation at all (an image without persons)
  i % 4 == 1  one person with 10 labelled keypoints (the only kind TAO trains around)
  i % 4 == 2  one person with no keypoints plus a crowd region (RLE), both masked out by TAO
  i % 4 == 3  two persons: 3 and 6 labelled keypoints
KITTI (detectnet_v2's kitti_data): images/ and labels/ with three classes, mixed sizes and formats.

    root = make_wider_download(folder, random_images(24, seed=1), random_images(12, seed=2))
    root = make_coco(folder, train=8, val=4)
    root = make_kitti(folder, count=12)
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFilter


# ------------------------------------------------------------------------------------------------ WIDER FACE
@dataclass(frozen=True)
class WiderFace:
    x1: int
    y1: int
    w: int
    h: int
    invalid: int = 0
    blur: int = 0
    occlusion: int = 0

    def line(self) -> str:
        # Same field order as WIDER, with its trailing space.
        fields = (self.x1, self.y1, self.w, self.h, self.blur, 0, 0, self.invalid, self.occlusion, 0)
        return " ".join(str(value) for value in fields) + " "


@dataclass(frozen=True)
class WiderImage:
    rel_path: str  # relative to WIDER_<split>/images, e.g. "0--Parade/0_Parade_marchingband_1_5.jpg"
    size: tuple[int, int]  # width, height
    mode: str = "RGB"  # "L" for a grayscale source JPEG
    faces: tuple[WiderFace, ...] = ()

    @property
    def flat_name(self) -> str:
        return self.rel_path.rsplit(".", 1)[0].replace("/", "__")


@dataclass(frozen=True)
class SplitPaths:
    images_dir: Path
    annotations: Path


def random_images(
    count: int,
    seed: int = 0,
    width: int | tuple[int, int] = (200, 400),
    aspects: tuple[float, ...] = (0.56, 0.67, 0.75, 1.0, 1.33, 1.5),
    max_faces: int = 6,
    events: int = 4,
    gray_every: int = 5,
) -> list[WiderImage]:
    """`count` images spread over `events` event folders; width fixed or drawn from a range.

    WIDER is mostly 1024 px wide with many aspects; every `gray_every`-th image is a grayscale JPEG,
    every seventh has no face. Boxes may cross the border and some are flagged invalid.
    """
    rng = random.Random(seed)
    images = []
    for index in range(count):
        image_width = width if isinstance(width, int) else rng.randint(*width)
        image_height = max(16, int(image_width * rng.choice(aspects)))
        event = index % events
        faces = []
        for _ in range(0 if index % 7 == 6 else rng.randint(1, max_faces)):
            w = rng.randint(2, max(3, image_width // 4))
            h = int(w * rng.uniform(1.0, 1.4))
            faces.append(
                WiderFace(
                    rng.randint(-w // 4, image_width - w // 2),
                    rng.randint(-h // 4, image_height - h // 2),
                    w,
                    h,
                    invalid=int(rng.random() < 0.08),
                    blur=rng.randint(0, 2),
                )
            )
        images.append(
            WiderImage(
                f"{event}--Event{event}/{event}_Event{event}_sample_{seed}_{index}.jpg",
                (image_width, image_height),
                "L" if gray_every and index % gray_every == gray_every - 1 else "RGB",
                tuple(faces),
            )
        )
    return images


def annotation_text(images: list[WiderImage]) -> str:
    lines = []
    for image in images:
        lines.append(image.rel_path)
        lines.append(str(len(image.faces)))
        if image.faces:
            lines.extend(face.line() for face in image.faces)
        else:
            lines.append("0 0 0 0 0 0 0 0 0 0 ")
    return "\n".join(lines) + "\n"


def synthetic_photo(size: tuple[int, int], mode: str, seed: int) -> Image.Image:
    """Photo-like content (soft shapes, grain) that never reaches black, so padding is detectable."""
    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size, tuple(rng.randint(90, 200) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(30):
        x, y = rng.randrange(width), rng.randrange(height)
        rx, ry = rng.randint(4, max(5, width // 4)), rng.randint(4, max(5, height // 4))
        draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=tuple(rng.randint(60, 255) for _ in range(3)))
    image = image.filter(ImageFilter.GaussianBlur(1.5))
    grain = Image.effect_noise(size, 24).convert("RGB")
    image = Image.blend(image, grain, 0.12)
    return image.convert(mode)


def write_images(images_dir: Path, images: list[WiderImage], seed: int = 0, quality: int = 90) -> None:
    for index, image in enumerate(images):
        path = images_dir / image.rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        synthetic_photo(image.size, image.mode, seed * 100003 + index).save(path, "JPEG", quality=quality)


def make_split(root: Path, split: str, images: list[WiderImage], seed: int = 0) -> SplitPaths:
    """`<root>/WIDER_<split>/images/...` and `<root>/wider_face_split/wider_face_<split>_bbx_gt.txt`."""
    images_dir = root / f"WIDER_{split}" / "images"
    write_images(images_dir, images, seed)
    annotations = root / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt"
    annotations.parent.mkdir(parents=True, exist_ok=True)
    annotations.write_text(annotation_text(images), encoding="utf-8")
    return SplitPaths(images_dir, annotations)


def make_wider_download(
    root: Path, train: list[WiderImage], val: list[WiderImage], top_folder: str | None = None
) -> Path:
    """A folder as the download step leaves it (optionally one folder level deeper); returns `root`."""
    base = root / top_folder if top_folder else root
    make_split(base, "train", train, seed=1)
    make_split(base, "val", val, seed=2)
    return root


# ------------------------------------------------------------------------------------------------ COCO person keypoints
COCO_SIZE = (64, 48)


def file_name(split: str, index: int) -> str:
    # COCO names images by id, zero-padded to 12 digits; ids differ between splits.
    return f"{(1000 if split == 'val' else 0) + index + 1:012d}.jpg"


def person(ann_id: int, image_id: int, keypoints: int, crowd: bool = False) -> dict[str, Any]:
    points = []
    for joint in range(17):
        points += [10 + joint, 10 + joint, 2] if joint < keypoints else [0, 0, 0]
    segmentation: Any = (
        {"counts": [0, 600, COCO_SIZE[0] * COCO_SIZE[1] - 600], "size": [COCO_SIZE[1], COCO_SIZE[0]]} if crowd
        else [[5, 5, 45, 5, 45, 40, 5, 40]]
    )
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": int(crowd), "area": 1400.0,
            "bbox": [5, 5, 40, 35], "num_keypoints": keypoints, "keypoints": points,
            "segmentation": segmentation}


def annotations(split: str, count: int) -> dict[str, Any]:
    images, anns = [], []
    for index in range(count):
        image_id = int(file_name(split, index)[:-4])
        images.append({"id": image_id, "file_name": file_name(split, index), "width": COCO_SIZE[0],
                       "height": COCO_SIZE[1]})
        kind = index % 4
        people = {0: [], 1: [(10, False)], 2: [(0, False), (0, True)], 3: [(3, False), (6, False)]}[kind]
        for keypoints, crowd in people:
            anns.append(person(len(anns) + 1 + 10000 * (split == "val"), image_id, keypoints, crowd))
    categories = [{"id": 1, "name": "person", "supercategory": "person",
                   "keypoints": [f"joint_{j}" for j in range(17)], "skeleton": [[16, 14], [14, 12]]}]
    return {"info": {"description": "tiny COCO"}, "images": images, "annotations": anns, "categories": categories}


def make_coco(root: Path, train: int = 8, val: int = 4) -> Path:
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split, count in (("train", train), ("val", val)):
        folder = root / f"{split}2017"
        folder.mkdir(exist_ok=True)
        for index in range(count):
            Image.new("RGB", COCO_SIZE, (index * 20 % 255, 80, 120)).save(folder / file_name(split, index))
        (root / "annotations" / f"person_keypoints_{split}2017.json").write_text(
            json.dumps(annotations(split, count)))
    return root


# ------------------------------------------------------------------------------------------------ KITTI
KITTI_CLASSES = ("car", "cyclist", "pedestrian")


def kitti_line(name: str, box: tuple) -> str:
    return "{} 0.00 0 -1.57 {:.2f} {:.2f} {:.2f} {:.2f} 1.50 1.60 3.70 1.0 1.5 20.0 -1.55\n".format(name, *box)


def make_kitti(root: Path, count: int = 12, size: tuple = (160, 96), extra_class: str | None = None,
               classes: tuple[str, ...] = KITTI_CLASSES) -> Path:
    """`root/images/*.png|jpg` and `root/labels/*.txt`: every class in several images; every third image
    at another size (letterboxed by the data step), every fourth a JPEG."""
    rng = random.Random(7)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for index in range(count):
        width, height = (size[0] * 2, size[1] * 3) if index % 3 == 0 else size
        pixels = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
        extension = ".jpg" if index % 4 == 1 else ".png"
        pixels.save(root / "images" / f"frame_{index:03d}{extension}")
        lines = [kitti_line(classes[(index + k) % len(classes)], (5 + k, 6 + k, width / 2 + k, height / 2 + k))
                 for k in range(2)]
        if extra_class and index % 2 == 0:
            lines.append(kitti_line(extra_class, (1, 1, 10, 10)))
        (root / "labels" / f"frame_{index:03d}.txt").write_text("".join(lines))
    return root
