"""Small WIDER FACE look-alikes: images, annotation files, download folders and zips.

Used by the converter's tests, its benchmark and the end-to-end pipeline test. The annotation files
carry the real file's quirks: trailing spaces, a count of 0 followed by a line of ten zeros,
faces flagged invalid, boxes touching or crossing the border, zero-size and tiny boxes.

    images = quirky_images()                      # or random_images(50, seed=1)
    split = make_split(tmp_path, "train", images)   # WIDER_train/images/... + wider_face_split/...
    root = make_wider_download(tmp_path / "dl", quirky_images(), random_images(3), top_folder="WIDER")
    zips = make_wider_zips(tmp_path / "zips", quirky_images(), random_images(3))
"""

from __future__ import annotations

import random
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

FACE_FIELDS = ("x1", "y1", "w", "h", "blur", "expression", "illumination", "invalid", "occlusion", "pose")


@dataclass(frozen=True)
class FixtureFace:
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
class FixtureImage:
    rel_path: str  # relative to WIDER_<split>/images, e.g. "0--Parade/0_Parade_marchingband_1_5.jpg"
    size: tuple[int, int]  # width, height
    mode: str = "RGB"  # "L" for a grayscale source JPEG
    faces: tuple[FixtureFace, ...] = ()

    @property
    def flat_name(self) -> str:
        return self.rel_path.rsplit(".", 1)[0].replace("/", "__")


@dataclass(frozen=True)
class SplitPaths:
    images_dir: Path
    annotations: Path


# The quirky set. Expected results (736x416 output) are worked out in tests/test_wider_to_kitti.py.
PARADE = FixtureImage(
    "0--Parade/0_Parade_marchingband_1_5.jpg",
    (1000, 500),
    "RGB",
    (
        FixtureFace(100, 50, 200, 100),  # plain face
        FixtureFace(900, 400, 200, 150),  # crosses the right and bottom borders
        FixtureFace(10, 10, 50, 50, invalid=1),  # flagged invalid
        FixtureFace(500, 250, 1, 1),  # tiny: 0.74 px after scaling
        FixtureFace(300, 300, 0, 20),  # zero width, as found in WIDER
        FixtureFace(1200, 100, 50, 50),  # entirely right of the image
        FixtureFace(-10, 200, 40, 40),  # starts left of the image
    ),
)
HANDSHAKE_GRAY = FixtureImage(
    "1--Handshaking/1_Handshaking_Handshaking_1_42.jpg",
    (300, 600),
    "L",
    (FixtureFace(0, 0, 30, 40), FixtureFace(150, 300, 60, 80, blur=2, occlusion=1)),  # touches top-left
)
PROTEST_NO_FACES = FixtureImage("2--Demonstration/2_Demonstration_Protesters_2_10.jpg", (400, 300))
RIOT_SMALL = FixtureImage("3--Riot/3_Riot_Riot_3_1.jpg", (160, 90), "RGB", (FixtureFace(20, 10, 16, 16),))
DANCING_ONLY_INVALID = FixtureImage(
    "4--Dancing/4_Dancing_Dancing_4_2.jpg", (640, 480), "RGB", (FixtureFace(100, 100, 80, 80, invalid=1),)
)


def quirky_images() -> list[FixtureImage]:
    return [PARADE, HANDSHAKE_GRAY, PROTEST_NO_FACES, RIOT_SMALL, DANCING_ONLY_INVALID]


def random_images(
    count: int,
    seed: int = 0,
    width: int | tuple[int, int] = (200, 400),
    aspects: tuple[float, ...] = (0.56, 0.67, 0.75, 1.0, 1.33, 1.5),
    max_faces: int = 6,
    events: int = 4,
    gray_every: int = 5,
) -> list[FixtureImage]:
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
                FixtureFace(
                    rng.randint(-w // 4, image_width - w // 2),
                    rng.randint(-h // 4, image_height - h // 2),
                    w,
                    h,
                    invalid=int(rng.random() < 0.08),
                    blur=rng.randint(0, 2),
                )
            )
        images.append(
            FixtureImage(
                f"{event}--Event{event}/{event}_Event{event}_sample_{seed}_{index}.jpg",
                (image_width, image_height),
                "L" if gray_every and index % gray_every == gray_every - 1 else "RGB",
                tuple(faces),
            )
        )
    return images


def annotation_text(images: list[FixtureImage]) -> str:
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


def write_images(images_dir: Path, images: list[FixtureImage], seed: int = 0, quality: int = 90) -> None:
    for index, image in enumerate(images):
        path = images_dir / image.rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        synthetic_photo(image.size, image.mode, seed * 100003 + index).save(path, "JPEG", quality=quality)


def make_split(root: Path, split: str, images: list[FixtureImage], seed: int = 0) -> SplitPaths:
    """`<root>/WIDER_<split>/images/...` and `<root>/wider_face_split/wider_face_<split>_bbx_gt.txt`."""
    images_dir = root / f"WIDER_{split}" / "images"
    write_images(images_dir, images, seed)
    annotations = root / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt"
    annotations.parent.mkdir(parents=True, exist_ok=True)
    annotations.write_text(annotation_text(images), encoding="utf-8")
    return SplitPaths(images_dir, annotations)


def make_wider_download(
    root: Path, train: list[FixtureImage], val: list[FixtureImage], top_folder: str | None = None
) -> Path:
    """A folder as the download step leaves it (optionally one folder level deeper); returns `root`."""
    base = root / top_folder if top_folder else root
    make_split(base, "train", train, seed=1)
    make_split(base, "val", val, seed=2)
    return root


def make_wider_zips(folder: Path, train: list[FixtureImage], val: list[FixtureImage]) -> dict[str, Path]:
    """WIDER_train.zip, WIDER_val.zip and wider_face_split.zip laid out like the published archives."""
    folder.mkdir(parents=True, exist_ok=True)
    zips = {}
    with tempfile.TemporaryDirectory() as temp:
        staging = make_wider_download(Path(temp), train, val)
        for name in ("WIDER_train", "WIDER_val", "wider_face_split"):
            path = folder / f"{name}.zip"
            with zipfile.ZipFile(path, "w") as archive:
                for member in sorted((staging / name).rglob("*")):
                    archive.write(member, member.relative_to(staging).as_posix())
            zips[path.name] = path
    return zips
