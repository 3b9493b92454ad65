"""A look at what inference drew: a few annotated images and one grid of them, logged to MLflow.

Both families write their drawings to <results>/images_annotated/ (detectnet_v2: boxes; bpnet with
--dump_visualizations: skeletons). The grid needs Pillow (the TAO 5.0 TF1 image ships Pillow 8);
without it the images are still logged and a log line says why there is no grid.
"""

import logging
import os
from typing import List

from tao_aml.steps.tao.tracking import Tracker

LOG = logging.getLogger("tao_aml.previews")

ANNOTATED = "images_annotated"
GRID_NAME = "preview_grid.jpg"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
PREVIEW_COUNT = 8
TILE = 256
COLUMNS = 4


def pick_images(folder: str, count: int = PREVIEW_COUNT) -> List[str]:
    """The first `count` images of `folder` by name, so reruns show the same ones."""
    if not os.path.isdir(folder):
        return []
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    return [os.path.join(folder, n) for n in names[:count]]


def make_grid(paths: List[str], output: str, tile: int = TILE, columns: int = COLUMNS) -> bool:
    """Tile the images (each fitted into tile x tile) into one JPEG; False when Pillow is missing."""
    try:
        from PIL import Image
    except ImportError:
        LOG.warning("previews: Pillow is not installed, so no %s (the images are logged one by one)", GRID_NAME)
        return False
    columns = max(1, min(columns, len(paths)))
    rows = (len(paths) + columns - 1) // columns
    grid = Image.new("RGB", (columns * tile, rows * tile), (32, 32, 32))
    for index, path in enumerate(paths):
        with Image.open(path) as image:
            picture = image.convert("RGB")
        picture.thumbnail((tile, tile))
        x = (index % columns) * tile + (tile - picture.width) // 2
        y = (index // columns) * tile + (tile - picture.height) // 2
        grid.paste(picture, (x, y))
    grid.save(output, "JPEG", quality=85)
    return True


def log_previews(tracker: Tracker, results_dir: str, count: int = PREVIEW_COUNT) -> List[str]:
    """Log up to `count` annotated images under previews/ and their grid; returns the images used."""
    paths = pick_images(os.path.join(results_dir, ANNOTATED), count)
    if not paths:
        return []
    grid = os.path.join(results_dir, GRID_NAME)
    if make_grid(paths, grid):
        LOG.info("previews: %d annotated images in %s", len(paths), grid)
        tracker.log_artifact(grid, "previews")
    for path in paths:
        tracker.log_artifact(path, "previews/images")
    return paths
