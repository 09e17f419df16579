"""The COCO validation benchmark stays runnable: a tiny run end to end (generation, both steps in
subprocesses, the table), and its generated file is a valid quota-shaped detection set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from loupe.coco import Purpose, validate_coco
from loupe.enums import AnnotationKind

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "coco_validation.py"


def test_tiny_benchmark_run():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--images", "300", "--boxes", "1500", "--categories", "20"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "loupe report: ok=True errors=0 warnings=0 images=300 annotations=1500 categories=20" in out.stdout
    assert "pycocotools COCO(path)" in out.stdout and "time ratio loupe / pycocotools" in out.stdout


def test_generated_file_is_valid(tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import coco_validation
    finally:
        sys.path.remove(str(SCRIPT.parent))
    path = tmp_path / "od.json"
    coco_validation.generate(path, 500, 2000, 30)
    report = validate_coco(
        path.read_bytes(), purpose=Purpose.TRAINING, expected_kind=AnnotationKind.DETECTION
    )
    assert report.ok and (report.image_count, report.annotation_count, report.category_count) == (
        500,
        2000,
        30,
    )
    assert all(c.image_count >= 1 for c in report.categories)
    assert all(e.url and e.url.startswith(f"https://{coco_validation.HOST}/") for e in report.images)
