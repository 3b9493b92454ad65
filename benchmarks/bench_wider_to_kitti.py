"""WIDER FACE -> KITTI: the converter step against a plain one-image-at-a-time baseline.

    PYTHONPATH=src python benchmarks/bench_wider_to_kitti.py [--images 150] [--workers N]

Generates WIDER-sized JPEGs (1024 px wide, varied aspect, a fifth of them grayscale), then in the
same run converts them with the baseline (what the TAO notebook's script does: decode, convert to
gray, BICUBIC resize, letterbox, default PNG, one image at a time) and with the converter step.
Checks that both wrote identical labels, and prints images/sec, the ratio and how close the images
are (PSNR of the converter's images against the baseline's). Each side runs --repeat times,
alternating, and the best run counts (shared machines are noisy). Exits 1 if the labels differ or
the ratio is under --require_ratio.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageChops, ImageStat

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from tao_aml.steps import wider_to_kitti  # noqa: E402
from wider_fixtures import make_split, random_images  # noqa: E402

WIDTH, HEIGHT = 736, 416
TAIL = "0.00 0.00 0.00 0.00 0.00 0.00 0.00"


# ---------------------------------------------------------------------------------------------
# Baseline: written independently of the step, so that equal labels cross-check its geometry.


def baseline_annotations(path: Path) -> list[tuple[str, list[list[float]]]]:
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    records, index = [], 0
    while index < len(lines):
        name, count = lines[index], int(lines[index + 1])
        faces = [[float(v) for v in lines[index + 2 + k].split()] for k in range(count)]
        records.append((name, faces))
        index += 2 + max(count, 1)  # a zero count is followed by one line of zeros
    return records


def baseline_convert(images_dir: Path, annotations: Path, out: Path) -> None:
    (out / "images").mkdir(parents=True)
    (out / "labels").mkdir()
    for name, faces in baseline_annotations(annotations):
        image = Image.open(images_dir / name).convert("L")
        iw, ih = image.size
        scale = min(WIDTH / iw, HEIGHT / ih)
        nw, nh = min(WIDTH, round(iw * scale)), min(HEIGHT, round(ih * scale))
        dx, dy = (WIDTH - nw) // 2, (HEIGHT - nh) // 2
        canvas = Image.new("L", (WIDTH, HEIGHT))
        canvas.paste(image.resize((nw, nh), Image.BICUBIC), (dx, dy))
        flat = name.rsplit(".", 1)[0].replace("/", "__")
        canvas.convert("RGB").save(out / "images" / f"{flat}.png")
        rows = []
        for x, y, w, h, *flags in faces:
            if flags[3]:  # invalid
                continue
            x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + w, float(iw)), min(y + h, float(ih))
            if w > 0 and h > 0 and (x2 <= x1 or y2 <= y1):
                continue  # outside the image
            box = (x1 * nw / iw + dx, y1 * nh / ih + dy, x2 * nw / iw + dx, y2 * nh / ih + dy)
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                continue
            rows.append("face 0.00 0 0.00 {:.2f} {:.2f} {:.2f} {:.2f} {}\n".format(*box, TAIL))
        (out / "labels" / f"{flat}.txt").write_text("".join(rows))


# ---------------------------------------------------------------------------------------------


def mean_squared_error(first: Path, second: Path) -> float:
    with Image.open(first) as a, Image.open(second) as b:
        return ImageStat.Stat(ImageChops.difference(a.convert("L"), b.convert("L"))).rms[0] ** 2


def psnr(mse: float) -> float:
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def folder_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.iterdir()) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=150)
    parser.add_argument("--workers", type=int, default=wider_to_kitti.default_workers())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--require_ratio", type=float, default=0.0, help="exit 1 below this speed-up")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-wider-"))
    try:
        started = time.perf_counter()
        images = random_images(args.images, seed=args.seed, width=1024,
                               aspects=(0.56, 0.66, 0.75, 1.0, 1.33, 1.5), max_faces=20)
        split = make_split(work / "wider", "train", images, seed=args.seed)
        source_mb = sum(p.stat().st_size for p in split.images_dir.rglob("*.jpg")) / 1e6
        print(f"generated {len(images)} JPEGs, 1024 px wide ({source_mb:.1f} MB) in "
              f"{time.perf_counter() - started:.1f} s; {os.cpu_count()} cores")

        step_argv = ["--images_dir", str(split.images_dir), "--annotations", str(split.annotations),
                     "--output_dir", str(work / "step"), "--workers", str(args.workers)]
        baseline_seconds, step_seconds = [], []
        for _ in range(args.repeat):
            shutil.rmtree(work / "baseline", ignore_errors=True)
            shutil.rmtree(work / "step", ignore_errors=True)
            started = time.perf_counter()
            baseline_convert(split.images_dir, split.annotations, work / "baseline")
            baseline_seconds.append(time.perf_counter() - started)
            started = time.perf_counter()
            wider_to_kitti.body(step_argv)
            step_seconds.append(time.perf_counter() - started)
        baseline_rate, step_rate = len(images) / min(baseline_seconds), len(images) / min(step_seconds)

        names = sorted(os.listdir(work / "baseline" / "labels"))
        different = [n for n in names if (work / "baseline" / "labels" / n).read_bytes()
                     != (work / "step" / "labels" / n).read_bytes()]
        if sorted(os.listdir(work / "step" / "labels")) != names:
            different.append("(the sets of label files differ)")
        errors = [mean_squared_error(work / "baseline" / "images" / n, work / "step" / "images" / n)
                  for n in sorted(os.listdir(work / "baseline" / "images"))]
        ratio = step_rate / baseline_rate
        print(f"baseline (1 process, BICUBIC, PNG level 6): {baseline_rate:6.1f} images/s, "
              f"{folder_mb(work / 'baseline' / 'images'):.1f} MB of PNG")
        print(f"converter ({args.workers} worker(s)):              {step_rate:6.1f} images/s, "
              f"{folder_mb(work / 'step' / 'images'):.1f} MB of PNG")
        print(f"speed-up: {ratio:.2f}x (best of {args.repeat}; slowest converter run "
              f"{len(images) / max(step_seconds):.1f} images/s); labels identical: {not different}")
        print(f"images against the baseline's: PSNR {psnr(sum(errors) / len(errors)):.1f} dB overall, "
              f"{psnr(max(errors)):.1f} dB for the least similar image")
        if different:
            print("label files that differ:", ", ".join(different[:10]))
            return 1
        return 0 if ratio >= args.require_ratio else 1
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    sys.exit(main())
