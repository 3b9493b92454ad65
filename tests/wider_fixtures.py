"""WIDER FACE look-alikes for the tests: the generators of tao_aml.simulate.data (what `tao-aml rehearse`
generates), the quirky set whose expected conversion tests/test_wider_to_kitti.py works out, and the zips.

    images = quirky_images()                      # or random_images(50, seed=1)
    split = make_split(tmp_path, "train", images)   # WIDER_train/images/... + wider_face_split/...
    root = make_wider_download(tmp_path / "dl", quirky_images(), random_images(3), top_folder="WIDER")
    zips = make_wider_zips(tmp_path / "zips", quirky_images(), random_images(3))
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from tao_aml.simulate.data import SplitPaths, annotation_text, make_split, make_wider_download, random_images
from tao_aml.simulate.data import WiderFace as FixtureFace
from tao_aml.simulate.data import WiderImage as FixtureImage

__all__ = ["FixtureFace", "FixtureImage", "SplitPaths", "annotation_text", "make_split", "make_wider_download",
           "make_wider_zips", "quirky_images", "random_images"]

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
