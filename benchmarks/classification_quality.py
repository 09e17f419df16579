"""Benchmark: few-shot classification quality of the trainer's default recipe.

For each dataset (cifar10, gtsrb, hemlock_cherry under ../shared/datasets) and each shot count
(2, 5, 10 images per class, train_<k>shot.json), train with ``train_classifier`` exactly as a
job does (its own held-out split picks fine-tuning or the linear head, then the final model is
retrained on every training image; test.json is given as the evaluation set and never trained
on) and report top-1 accuracy on test.json beside the floor from datasets/INDEX.md (frozen Lite0
features + logistic regression), with the wall and CPU time of each run. ``--variant linear``
runs the recipe without fine-tuning (the linear head on cached augmented views) for comparison.

    .venv/bin/python benchmarks/classification_quality.py [--datasets cifar10 gtsrb] [--shots 2 5]
        [--variant default|linear] [--threads N] [--export]

Skips (exit 0) when ../shared/datasets is absent: a user's clone has no shared folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "trainer_image")]

from trainer.classification import TrainOptions, export_classifier, train_classifier
from trainer.context import LocalContext

from loupe.runner.examples import Example, examples_from_coco

DEFAULT_DATA = ROOT.parent / "shared" / "datasets"
# datasets/INDEX.md: frozen EfficientNet-Lite0 + logistic regression (C=10), top-1 % on test.json
FLOOR = {
    "cifar10": {2: 42.7, 5: 53.3, 10: 63.0},
    "gtsrb": {2: 27.0, 5: 47.3, 10: 53.3},
    "hemlock_cherry": {2: 100.0, 5: 100.0, 10: 100.0},
}
# Azure Image Analysis 4.0 published few-shot averages over 22 datasets (not these datasets)
AZURE = {2: 73.0, 5: 79.1, 10: 81.3}


def load_split(folder: Path, name: str) -> tuple[list[Example], list[str]]:
    """The split's examples, categories in id order (label i is the i-th category by id)."""
    coco = json.loads((folder / f"{name}.json").read_text())
    names = [c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"])]
    examples, labels = examples_from_coco(coco, folder, names)
    for example in examples:
        example.labels.sort()
    return examples, labels


def run_one(folder: Path, shots: int, options: TrainOptions, export: bool) -> dict:
    train, labels = load_split(folder, f"train_{shots}shot")
    test, test_labels = load_split(folder, "test")
    assert test_labels == labels, f"{folder.name}: test categories differ from training categories"
    wall, cpu = time.monotonic(), time.process_time()
    result = train_classifier(
        train,
        labels,
        multilabel=False,
        context=LocalContext.with_budget(3600.0, seed=0),
        holdout=test,
        options=options,
    )
    row = {
        "dataset": folder.name,
        "shots": shots,
        "train_images": len(train),
        "test_images": len(test),
        "top1": 100.0 * float(np.mean(result.holdout.scores.argmax(1) == result.holdout.targets)),
        "wall_s": time.monotonic() - wall,
        "cpu_s": time.process_time() - cpu,
        "views": result.stats.views,
        "epochs": result.stats.finetune_epochs_planned,
        "method": result.stats.method,
    }
    if export:
        with tempfile.TemporaryDirectory() as out:
            row["onnx_max_abs_diff"] = export_classifier(result, Path(out))["max_abs_diff"]
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--datasets", nargs="+", default=["cifar10", "gtsrb", "hemlock_cherry"])
    parser.add_argument("--shots", nargs="+", type=int, default=[2, 5, 10])
    parser.add_argument("--variant", choices=["default", "linear"], default="default")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    parser.add_argument("--export", action="store_true", help="also export and verify each model's ONNX")
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"skipped: {args.data} not found (the few-shot datasets live in the shared folder)")
        return 0
    options = TrainOptions(threads=args.threads)
    if args.variant == "linear":
        options = replace(options, finetune=False)
    print(f"variant={args.variant} threads={args.threads or os.cpu_count()} data={args.data}")
    header = (
        f"{'dataset':15s} {'shots':>5s} {'train':>5s} {'test':>4s} {'top1%':>6s} {'floor%':>6s} "
        f"{'delta':>6s} {'azure%':>6s} {'views':>5s} {'epochs':>6s} {'method':>8s} {'wall_s':>7s} {'cpu_s':>7s}"
    )
    print(header, flush=True)
    rows = []
    for name in args.datasets:
        for shots in args.shots:
            row = run_one(args.data / name, shots, options, args.export)
            rows.append(row)
            floor = FLOOR.get(name, {}).get(shots, float("nan"))
            extra = f" onnx_diff={row['onnx_max_abs_diff']:.1e}" if "onnx_max_abs_diff" in row else ""
            print(
                f"{name:15s} {shots:5d} {row['train_images']:5d} {row['test_images']:4d} {row['top1']:6.1f} "
                f"{floor:6.1f} {row['top1'] - floor:+6.1f} {AZURE.get(shots, float('nan')):6.1f} "
                f"{row['views']:5d} {row['epochs']:6d} {row['method']:>8s} {row['wall_s']:7.1f} {row['cpu_s']:7.1f}{extra}",
                flush=True,
            )
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
