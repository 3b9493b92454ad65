"""Image files as TAO's readers see their pixels: decoded in full, 8 bits per sample, no EXIF rotation.

TAO trains and evaluates on `tf.image.decode_png/decode_jpeg(channels=3)` (tao_tensorflow1_backend
`nvidia_tao_tf1/core/processors/decode_image.py`). TensorFlow's PNG decoder (`tensorflow/core/lib/png/
png_io.cc`) keeps the high byte of 16-bit samples ("strip off the LS 8 bits"), expands palettes and
1/2/4-bit gray to 8 bits, strips alpha and replicates gray to three channels; TF1 inference, export
calibration and TAO Deploy's loaders call Pillow's `convert("RGB")`, which does the same except for
16-bit gray, which Pillow clips at 255 (a solid white image). So 16-bit gray (`I;16`, `I;16B`, `I`) is
scaled here by keeping the high byte, as TensorFlow does, and every other mode goes through Pillow's
own conversion (palette, CMYK, gray with alpha, RGBA).

EXIF orientation: neither TensorFlow's decoders nor Pillow's `Image.open` (nor TAO's KITTI converter,
which reads the size with `Image.open(f).size`) apply it, so every TAO reader sees the pixels as stored
and labels drawn on them refer to that orientation. The converters therefore never rotate pixels; they
write PNGs without EXIF, so that no viewer rotates them either.
"""

from typing import Tuple

import numpy as np
from PIL import Image

# What Pillow raises for undecodable, truncated or oversized files (and unreadable paths).
READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
# Pillow's modes for 16-bit gray PNGs (`I` in older Pillow releases).
SIXTEEN_BIT_GRAY = ("I;16", "I;16B", "I;16L", "I;16N", "I")
OUTPUT_MODES = ("L", "RGB")


def verify(path: str) -> None:
    """Check a file's structure without decoding it: a PNG's chunk checksums (libpng, which TensorFlow
    uses, refuses a bad CRC; Pillow's decoder does not look at them). READ_ERRORS if it fails."""
    with Image.open(path) as probe:
        probe.verify()


def check_decodes(path: str) -> Tuple[int, int]:
    """Verify and decode the whole file, as TAO will, and return its (width, height); READ_ERRORS if it
    cannot. `load()` decodes every pixel, which catches truncated and corrupt data in any format."""
    verify(path)
    with Image.open(path) as image:
        image.load()
        return image.size


def pixels(image: Image.Image, mode: str) -> np.ndarray:
    """The pixels of an open image as 8-bit `mode` ("L" or "RGB"), as TAO's decoders see them."""
    if mode not in OUTPUT_MODES:
        raise ValueError("mode must be one of {}, got {!r}".format(OUTPUT_MODES, mode))
    if image.mode in SIXTEEN_BIT_GRAY:
        samples = np.asarray(image).astype(np.int64).clip(0, 0xFFFF)
        image = Image.fromarray((samples >> 8).astype(np.uint8), "L")
    return np.asarray(image if image.mode == mode else image.convert(mode))
