"""Benchmark: COCO structure validation at the quota, against pycocotools' load.

Generates (deterministically, into a temp dir) an object-detection COCO file at the service's
quota - 200,000 images, 1,000,000 boxes, 1,000 categories - then runs each step in a fresh
subprocess so that peak RSS is per step:

  loupe      read the file + loupe.coco.validate_coco (schema, ids, references, boxes, quotas;
             images are not fetched)
  pycocotools  pycocotools.coco.COCO(path) (json.load + index)
  official   json.load + the official checker's check_coco_annotation_file (with --official)

Goal: loupe no slower than pycocotools' load, and its peak RSS under 1.5 GB.

    .venv/bin/python benchmarks/coco_validation.py                 # full size
    .venv/bin/python benchmarks/coco_validation.py --images 20000 --boxes 100000 --categories 100
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RSS_GOAL_MB = 1536
# The official format names every image by URL; Loupe checks each against its allowed hosts.
HOST = "loupebench.blob.core.windows.net"


def generate(path: Path, n_images: int, n_boxes: int, n_categories: int, seed: int = 0) -> None:
    """A valid detection file: every image has a box, every category an image."""
    rng = random.Random(seed)
    sizes = [(640, 480), (1024, 768), (1920, 1080), (800, 800), (3000, 4000)]
    with path.open("w", encoding="utf-8") as f:
        f.write('{"info": {"description": "synthetic quota-sized detection set"},\n"images": [\n')
        for i in range(1, n_images + 1):
            w, h = sizes[rng.randrange(len(sizes))]
            sep = ",\n" if i < n_images else "\n"
            f.write(
                f'{{"id": {i}, "width": {w}, "height": {h}, "file_name": "images/{i:07d}.jpg", '
                f'"absolute_url": "https://{HOST}/datasets/od/images/{i:07d}.jpg"}}{sep}'
            )
        f.write('],\n"annotations": [\n')
        for a in range(1, n_boxes + 1):
            image_id = a if a <= n_images else rng.randint(1, n_images)
            category_id = a if a <= n_categories else rng.randint(1, n_categories)
            left, top = rng.random() * 0.8, rng.random() * 0.8
            width = rng.uniform(0.01, 1.0 - left)
            height = rng.uniform(0.01, 1.0 - top)
            sep = ",\n" if a < n_boxes else "\n"
            f.write(
                f'{{"id": {a}, "image_id": {image_id}, "category_id": {category_id}, '
                f'"bbox": [{left:.6f}, {top:.6f}, {width - 5e-7:.6f}, {height - 5e-7:.6f}]}}{sep}'
            )
        f.write('],\n"categories": [\n')
        for c in range(1, n_categories + 1):
            sep = ",\n" if c < n_categories else "\n"
            f.write(f'{{"id": {c}, "name": "category-{c:04d}"}}{sep}')
        f.write("]}\n")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _current_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_step(step: str, path: str) -> dict:
    """Runs in the child process: imports first (not timed), then the measured work."""
    sys.path.insert(0, str(ROOT))
    if step == "loupe":
        from urllib.parse import urlsplit

        from loupe.coco import Purpose, validate_coco
        from loupe.enums import AnnotationKind

        def url_allowed(url: str) -> bool:
            return urlsplit(url).hostname == HOST

        baseline = _current_rss_mb()
        t0, c0 = time.perf_counter(), time.process_time()
        data = Path(path).read_bytes()
        report = validate_coco(
            data, purpose=Purpose.TRAINING, expected_kind=AnnotationKind.DETECTION, url_allowed=url_allowed
        )
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        detail = {
            "ok": report.ok,
            "errors": report.error_count,
            "warnings": report.warning_count,
            "images": report.image_count,
            "annotations": report.annotation_count,
            "categories": report.category_count,
        }
    elif step == "pycocotools":
        from pycocotools.coco import COCO

        baseline = _current_rss_mb()
        t0, c0 = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(path)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        detail = {"images": len(coco.imgs), "annotations": len(coco.anns), "categories": len(coco.cats)}
    elif step == "official":
        from cognitive_service_vision_model_customization_python_samples.data import (
            check_coco_annotations as off,
        )

        baseline = _current_rss_mb()
        t0, c0 = time.perf_counter(), time.process_time()
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            off.check_coco_annotation_file(doc, off.AnnotationKind.OBJECT_DETECTION, off.Purpose.TRAINING)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        detail = {}
    else:
        raise SystemExit(f"unknown step {step}")
    return {
        "step": step,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mb": _peak_rss_mb(),
        "baseline_rss_mb": baseline,
        **detail,
    }


def measure(step: str, path: Path, repeat: int) -> dict:
    best = None
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--child", step, str(path)], capture_output=True, text=True
        )
        if out.returncode:
            raise SystemExit(f"step {step} failed:\n{out.stderr[-3000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if best is None or result["seconds"] < best["seconds"]:
            best = result
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200_000)
    parser.add_argument("--boxes", type=int, default=1_000_000)
    parser.add_argument("--categories", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs per step; the fastest is reported")
    parser.add_argument("--official", action="store_true", help="also time the official checker")
    parser.add_argument("--keep", type=Path, help="write the generated file here instead of a temp dir")
    parser.add_argument("--child", nargs=2, metavar=("STEP", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_step(*args.child)))
        return 0

    with tempfile.TemporaryDirectory(prefix="loupe-coco-bench-") as tmp:
        path = args.keep or Path(tmp) / "od_quota.json"
        t0 = time.perf_counter()
        generate(path, args.images, args.boxes, args.categories)
        size_mb = path.stat().st_size / 2**20
        print(
            f"generated {path.name}: {args.images} images, {args.boxes} boxes, {args.categories} categories, "
            f"{size_mb:.1f} MB in {time.perf_counter() - t0:.1f} s"
        )
        steps = ["loupe", "pycocotools"] + (["official"] if args.official else [])
        results = {s: measure(s, path, args.repeat) for s in steps}

    ours, ref = results["loupe"], results["pycocotools"]
    print(f"\n{'step':<34}{'seconds':>9}{'CPU s':>8}{'peak RSS MB':>13}{'RSS before MB':>15}")
    labels = {
        "loupe": "loupe validate_coco (read+check)",
        "pycocotools": "pycocotools COCO(path)",
        "official": "official checker (load+check)",
    }
    for s, r in results.items():
        print(
            f"{labels[s]:<34}{r['seconds']:>9.2f}{r['cpu_seconds']:>8.2f}{r['peak_rss_mb']:>13.0f}"
            f"{r['baseline_rss_mb']:>15.0f}"
        )
    ratio = ours["seconds"] / ref["seconds"]
    print(
        f"\ntime ratio loupe / pycocotools: {ratio:.2f}  (goal <= 1.00: {'met' if ratio <= 1 else 'MISSED'})"
    )
    print(
        f"loupe peak RSS: {ours['peak_rss_mb']:.0f} MB  (goal < {RSS_GOAL_MB} MB: "
        f"{'met' if ours['peak_rss_mb'] < RSS_GOAL_MB else 'MISSED'})"
    )
    print(
        f"loupe report: ok={ours['ok']} errors={ours['errors']} warnings={ours['warnings']} "
        f"images={ours['images']} annotations={ours['annotations']} categories={ours['categories']}"
    )
    return 0 if ours["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
