"""Converting a generated YOLO detection dataset (10,000 tiny images, 1-4 boxes each) to Azure COCO
with loupe.formats (docs/formats.md): wall time, tracemalloc's peak of Python allocations and the
process's resident memory, printed. The images are tiny on purpose: the point is the label handling.

    .venv/bin/python benchmarks/formats.py [--images 10000]
"""
from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import psutil
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loupe.formats import convert  # noqa: E402

NAMES = ["circle", "square", "triangle", "star", "cross"]


def generate(root: Path, count: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 60, 30)).save(buf, format="JPEG")
    jpeg = buf.getvalue()
    for i in range(count):
        (root / "images" / f"img_{i:05d}.jpg").write_bytes(jpeg)
        lines = []
        for _ in range(rng.randint(1, 4)):
            w, h = rng.uniform(0.05, 0.5), rng.uniform(0.05, 0.5)
            x, y = rng.uniform(w / 2, 1 - w / 2), rng.uniform(h / 2, 1 - h / 2)
            lines.append(f"{rng.randrange(len(NAMES))} {x:.6f} {y:.6f} {w:.6f} {h:.6f}")
        (root / "labels" / f"img_{i:05d}.txt").write_text("\n".join(lines) + "\n")
    (root / "data.yaml").write_text("names: [" + ", ".join(NAMES) + "]\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "yolo", Path(tmp) / "out"
        started = time.perf_counter()
        generate(src, args.images)
        print(f"generated {args.images:,} images in {time.perf_counter() - started:.1f} s")
        process = psutil.Process()
        rss_before = process.memory_info().rss
        tracemalloc.start()
        started = time.perf_counter()
        result = convert(src, out)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = process.memory_info().rss
        print(f"converted {result.layout.value}: {result.images:,} images, {result.annotations:,} boxes, "
              f"{len(result.categories)} categories in {elapsed:.2f} s "
              f"({result.images / elapsed:,.0f} images/s; tracemalloc slows Python code)")
        print(f"peak Python allocations (tracemalloc): {peak / 1024**2:.1f} MiB; "
              f"RSS {rss / 1024**2:.0f} MiB (+{(rss - rss_before) / 1024**2:.0f} MiB)")


if __name__ == "__main__":
    main()
