"""WIDER FACE -> KITTI: the converter step against NVIDIA's FaceNet notebook script (cv2), in the same run.

    PYTHONPATH=src python benchmarks/bench_wider_to_kitti.py [--images 150] [--repeat 5] [--cores 2,1]
        [--require 2=3,1=1.5] [--deflate isal|zlib] [--levers]

Generates WIDER-like JPEGs (1024 px wide, aspects 0.56 to 1.5, photo-like content, a fifth of them
grayscale, up to 20 faces each from 2 to 256 px, some invalid or crossing the border), then converts
them to 736x416 with the notebook's approach (tests/notebook_baseline.py: cv2 decode, INTER_CUBIC
resize, letterbox, gray replicated to 3 channels, cv2.imwrite PNG at its defaults, one process, one
image at a time) and with the converter step, writing 3 channels (the notebook's output) and 1
channel (what it writes for the train split). For each core count the process is pinned to that many
cores (the step's workers and OpenCV's threads follow), every side runs --repeat times in rotating
order, and the medians count. Prints images/s, the ratio to the notebook and bytes per image, and
checks the step's output against the notebook's: the letterboxed area and every box within 1 px, the
format and channel count of every image. Exits 1 if that check fails or a --require target
(cores=ratio, for 3 channels) is missed.

--levers times each stage on one core instead (decode, resize, PNG encoder and level, 1 or 3
channels), with the bytes each encoder writes: the numbers behind the step's choices.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import PIL
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

import notebook_baseline  # noqa: E402
from tao_aml.simulate.data import make_split, random_images  # noqa: E402
from tao_aml.steps.data import wider_to_kitti  # noqa: E402

WIDTH, HEIGHT = 736, 416


def parse_require(text: str) -> dict[int, float]:
    targets = {}
    for part in filter(None, text.split(",")):
        cores, _, ratio = part.partition("=")
        targets[int(cores)] = float(ratio)
    return targets


def cpu_time() -> float:
    """CPU seconds of this process and of its children that have ended."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def median_ms(function: Callable[[int], object], count: int, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        for index in range(count):
            function(index)
        runs.append((time.perf_counter() - started) / count * 1000)
    return statistics.median(runs)


# ---------------------------------------------------------------------------------------------
# The stages, one at a time, on one core


def levers(images_dir: Path, repeat: int) -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cv2.setNumThreads(1)
    raw = [path.read_bytes() for path in sorted(images_dir.rglob("*.jpg"))]
    count = len(raw)
    sizes = [Image.open(io.BytesIO(data)).size for data in raw]
    geometry = [wider_to_kitti.letterbox_geometry(w, h, WIDTH, HEIGHT) for w, h in sizes]
    content = [(g.content_width, g.content_height) for g in geometry]

    def pillow_gray(index: int, scaled: bool = True) -> Image.Image:
        image = Image.open(io.BytesIO(raw[index]))
        image.draft("L", content[index] if scaled else image.size)
        return image.convert("L")

    def pillow_rgb(index: int) -> Image.Image:
        return Image.open(io.BytesIO(raw[index])).convert("RGB")

    def cv2_decode(index: int, flag: int = cv2.IMREAD_COLOR) -> np.ndarray:
        return cv2.imdecode(np.frombuffer(raw[index], np.uint8), flag)

    rows: list[tuple[str, float, str]] = []

    def row(label: str, function: Callable[[int], object], size: Callable[[int], int] | None = None) -> None:
        kb = f"{statistics.mean(size(i) for i in range(count)) / 1000:6.1f} kB" if size else ""
        rows.append((label, median_ms(function, count, repeat), kb))

    rows.append(("decode", 0.0, ""))
    row("  cv2.imread colour (notebook)", cv2_decode)
    row("  cv2.imread IMREAD_GRAYSCALE", lambda i: cv2_decode(i, cv2.IMREAD_GRAYSCALE))
    row("  Pillow, full decode to RGB", pillow_rgb)
    row("  Pillow draft('L'), full size", lambda i: pillow_gray(i, scaled=False))
    row("  Pillow draft('L', letterboxed size): DCT-scaled (step)", pillow_gray)
    try:
        import simplejpeg
    except ImportError:
        rows.append(("  (simplejpeg not installed: its M/8 scaled decode not measured)", 0.0, ""))
    else:
        row("  simplejpeg gray, smallest M/8 scale >= letterboxed size", lambda i: simplejpeg.decode_jpeg(
            raw[i], colorspace="GRAY", min_width=content[i][0], min_height=content[i][1]))

    colour = [cv2_decode(i) for i in range(count)]
    gray = [pillow_gray(i) for i in range(count)]
    gray_arrays = [np.asarray(image) for image in gray]
    rows.append(("resize to the letterboxed size", 0.0, ""))
    row("  cv2 INTER_CUBIC, colour (notebook)",
        lambda i: cv2.resize(colour[i], content[i], interpolation=cv2.INTER_CUBIC))
    row("  cv2 INTER_CUBIC, gray after the scaled decode (step)",
        lambda i: cv2.resize(gray_arrays[i], content[i], interpolation=cv2.INTER_CUBIC))
    row("  cv2 INTER_AREA, gray after the scaled decode",
        lambda i: cv2.resize(gray_arrays[i], content[i], interpolation=cv2.INTER_AREA))
    row("  Pillow BICUBIC (antialiased), gray after the scaled decode",
        lambda i: gray[i].resize(content[i], Image.BICUBIC, reducing_gap=3.0))
    row("  Pillow BILINEAR (antialiased), gray after the scaled decode",
        lambda i: gray[i].resize(content[i], Image.BILINEAR))

    one_arrays = []
    for index in range(count):
        canvas = np.zeros((HEIGHT, WIDTH), np.uint8)
        (x, y, w, h) = geometry[index]
        canvas[y:y + h, x:x + w] = cv2.resize(gray_arrays[index], (w, h), interpolation=cv2.INTER_CUBIC)
        one_arrays.append(canvas)
    three_arrays = [np.repeat(a[:, :, None], 3, axis=2) for a in one_arrays]
    one = [Image.fromarray(a) for a in one_arrays]
    three = [Image.fromarray(a) for a in three_arrays]

    def cv2_png(images: list[np.ndarray]) -> Callable[[int], bytes]:
        return lambda i: cv2.imencode(".png", images[i])[1].tobytes()

    def pillow_png(images: list[Image.Image], level: int) -> Callable[[int], bytes]:
        def encode(index: int) -> bytes:
            buffer = io.BytesIO()
            images[index].save(buffer, "PNG", compress_level=level)
            return buffer.getvalue()
        return encode

    def step_png(channels: int, deflate: str) -> Callable[[int], bytes]:
        return lambda i: wider_to_kitti.encode_png(one_arrays[i], channels, deflate)

    for channels, pillow_images, arrays in ((3, three, three_arrays), (1, one, one_arrays)):
        rows.append((f"PNG encode, {channels} channel(s)", 0.0, ""))
        encoders = [(f"  cv2.imwrite defaults{' (notebook)' if channels == 3 else ''}", cv2_png(arrays)),
                    ("  Pillow compress_level=1", pillow_png(pillow_images, 1)),
                    ("  Pillow compress_level=6 (default)", pillow_png(pillow_images, 6))]
        encoders += [(f"  step: Up filter + {name} level {wider_to_kitti.DEFLATE_LEVEL}"
                      f"{' (step)' if name == wider_to_kitti.DEFLATE else ''}", step_png(channels, name))
                     for name in wider_to_kitti.DEFLATERS]
        for label, encode in encoders:
            row(label, encode, lambda i, encode=encode: len(encode(i)))

    rows.append(("PNG decode to 3 channels with libpng (cv2.imdecode), as tf.image.decode_png(channels=3)", 0.0, ""))
    for label, encode in (("  the notebook's file (cv2.imwrite, 3 channels)", cv2_png(three_arrays)),
                          ("  the step's 3-channel file", step_png(3, wider_to_kitti.DEFLATE)),
                          ("  the step's 1-channel file", step_png(1, wider_to_kitti.DEFLATE))):
        files = [np.frombuffer(encode(i), np.uint8) for i in range(count)]
        row(label, lambda i, files=files: cv2.imdecode(files[i], cv2.IMREAD_COLOR))

    print(f"per image on one core, median of {repeat} passes over {count} images:")
    for label, ms, kb in rows:
        print(f"{label:70s} {ms:6.2f} ms  {kb}" if ms else label)


# ---------------------------------------------------------------------------------------------
# Whole conversions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cores", default="2,1", help="core counts to run on, e.g. 2,1")
    parser.add_argument("--require", type=parse_require, default={},
                        help="targets for 3 channels, cores=ratio: e.g. 2=3,1=1.5 (exit 1 when missed)")
    parser.add_argument("--deflate", choices=sorted(wider_to_kitti.DEFLATERS), default=wider_to_kitti.DEFLATE,
                        help=f"the step's PNG deflater (default here: {wider_to_kitti.DEFLATE})")
    parser.add_argument("--levers", action="store_true", help="time each stage on one core instead")
    args = parser.parse_args()
    wider_to_kitti.DEFLATE = args.deflate  # the step's workers are forked: they inherit it

    work = Path(tempfile.mkdtemp(prefix="bench-wider-"))
    try:
        started = time.perf_counter()
        images = random_images(args.images, seed=args.seed, width=1024,
                               aspects=(0.56, 0.66, 0.75, 1.0, 1.33, 1.5), max_faces=20)
        split = make_split(work / "wider", "train", images, seed=args.seed)
        source_kb = sum(p.stat().st_size for p in split.images_dir.rglob("*.jpg")) / len(images) / 1000
        all_cpus = sorted(os.sched_getaffinity(0))
        print(f"generated {len(images)} JPEGs, 1024 px wide, {source_kb:.0f} kB each, in "
              f"{time.perf_counter() - started:.1f} s; this process may use {len(all_cpus)} core(s); Python "
              f"{sys.version.split()[0]}, OpenCV {cv2.__version__}, Pillow {PIL.__version__}, "
              f"step deflater {args.deflate}")
        if args.levers:
            levers(split.images_dir, args.repeat)
            return 0

        def notebook() -> None:
            notebook_baseline.convert(split.images_dir, split.annotations, work / "notebook")

        def step(channels: int, workers: int) -> Callable[[], None]:
            return lambda: wider_to_kitti.body([
                "--images_dir", str(split.images_dir), "--annotations", str(split.annotations),
                "--output_dir", str(work / f"step{channels}"), "--channels", str(channels),
                "--workers", str(workers)])

        failed = False
        # CPU time counts the step's workers too (reaped when its pool closes): CPU ms per image, and the
        # cores a run got (CPU time / wall time), which on a shared machine can be fewer than it may use.
        print(f"\n{'':8s} {'':34s} {'images/s (median; min-max)':>28s} {'x notebook':>10s} {'bytes/image':>12s} "
              f"{'CPU ms/image':>13s} {'cores got':>9s}")
        for cores in [int(c) for c in args.cores.split(",") if c]:
            if cores > len(all_cpus):
                print(f"{cores} cores: skipped, this process may use {len(all_cpus)}")
                continue
            os.sched_setaffinity(0, all_cpus[:cores])
            cv2.setNumThreads(cores)  # as OpenCV sizes its pool in a process started on that many cores
            sides = {"notebook (cv2, 1 process)": notebook,
                     f"step, 3 channels, {cores} worker(s)": step(3, cores),
                     f"step, 1 channel, {cores} worker(s)": step(1, cores)}
            folders = dict(zip(sides, ("notebook", "step3", "step1"), strict=True))
            seconds: dict[str, list[float]] = {name: [] for name in sides}
            cpu_seconds: dict[str, list[float]] = {name: [] for name in sides}
            for round_number in range(args.repeat):
                order = list(sides)[round_number % 3:] + list(sides)[:round_number % 3]
                for name in order:
                    shutil.rmtree(work / folders[name], ignore_errors=True)
                    cpu_before, started = cpu_time(), time.perf_counter()
                    sides[name]()
                    seconds[name].append(time.perf_counter() - started)
                    cpu_seconds[name].append(cpu_time() - cpu_before)
            baseline = statistics.median(seconds["notebook (cv2, 1 process)"])
            for name, runs in seconds.items():
                rate = len(images) / statistics.median(runs)
                spread = f"{len(images) / max(runs):.0f}-{len(images) / min(runs):.0f}"
                ratio = baseline / statistics.median(runs)
                size = notebook_baseline.bytes_per_image(work / folders[name] / "images") / 1000
                cpu_ms = statistics.median(cpu_seconds[name]) / len(images) * 1000
                got = statistics.median(c / s for c, s in zip(cpu_seconds[name], runs, strict=True))
                label = f"{cores} core{'s' if cores > 1 else ''}"
                print(f"{label:8s} {name:34s} {rate:15.1f} ({spread:>9s}) {ratio:9.2f}x {size:9.1f} kB "
                      f"{cpu_ms:13.2f} {got:9.2f}")
                if name.startswith("step, 3") and cores in args.require:
                    met = ratio >= args.require[cores]
                    failed |= not met
                    print(f"{'':8s} target for {cores} core(s): >= {args.require[cores]}x: "
                          f"{'met' if met else 'MISSED'}")
        if not (work / "step3").is_dir():
            return 1
        # The step's output does not depend on its workers (tests/test_wider_to_kitti.py): check it once.
        results = notebook_baseline.convert(split.images_dir, split.annotations, work / "notebook-check")
        for channels in (3, 1):
            check = notebook_baseline.compare(results, work / f"step{channels}", channels)
            overall, worst = notebook_baseline.psnr(work / "notebook-check", work / f"step{channels}", results)
            print(f"\n{channels} channel(s) against the notebook: {check.summary()}; gray PSNR {overall:.1f} dB "
                  f"overall, {worst:.1f} dB for the least similar image")
            for problem in check.problems[:10]:
                print("  " + problem)
            failed |= bool(check.problems)
        return 1 if failed else 0
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    sys.exit(main())
