"""Benchmark: few-shot classification quality of the trainer's default recipe beside a plain
linear probe computed in the same run.

Datasets are folders in the few-shot layout (``test.json`` and ``train_<k>shot.json`` in the
Azure COCO format, images beside them; ../shared/datasets/INDEX.md); ``--datasets`` takes folder
paths, or names looked up under ``--data``; ``--sample`` adds Loupe's generated sample set (the
first k training images per class). For each dataset and shot count the recipe is trained
exactly as a job trains it (test.json is given as the evaluation set and never trained on), and
top-1 and calibration error (ECE, 15 bins, as modelPerformance reports it) on test.json are
printed beside the probe: frozen EfficientNet-Lite0 features of the original images, mean-pooled
and L2-normalised, logistic regression with C=10 (the floor of issue 13). The last rows are the
means per shot count. ``--variant linear`` runs the recipe without fine-tuning.

    .venv/bin/python benchmarks/classification_quality.py [--datasets cifar10 /data/my_set] [--sample]
        [--shots 2 5 10] [--variant default|linear] [--seed N] [--threads N] [--export]

``--seed`` is the training seed (which training images the split pass holds out, the augmentation,
the fine-tuning order); the images of each shot count are the dataset's own.

Skips (exit 0) when no dataset folder exists: a user's clone has no shared folder.
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
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "trainer_image")]

from trainer.classification import TrainOptions, export_classifier, train_classifier
from trainer.classification.data import load_image
from trainer.classification.head import fit_linear_head
from trainer.context import LocalContext
from trainer.starting_points import DEFAULT_BACKBONE, load_backbone

from loupe.metrics.classification import expected_calibration_error
from loupe.preprocess import draft_size, to_input
from loupe.runner.examples import Example, examples_from_coco

DEFAULT_DATA = ROOT.parent / "shared" / "datasets"
PROBE_C = 10.0
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


def sample_set(folder: Path) -> dict[str, tuple[list[Example], list[str]]]:
    """Loupe's generated classification set as {"train": ..., "test": ...}."""
    from loupe import sample_data

    out = {}
    for split in ("train", "test"):
        data = sample_data.classification(split)
        data.write(folder / split)
        examples, labels = examples_from_coco(data.coco, folder / split)
        out[split] = (examples, labels)
    return out


def first_k(examples: list[Example], k: int) -> list[Example]:
    seen: dict[int, int] = {}
    out = []
    for example in examples:
        label = example.labels[0]
        if seen.get(label, 0) < k:
            seen[label] = seen.get(label, 0) + 1
            out.append(example)
    return out


class Probe:
    """The floor: frozen Lite0 features of the original images + logistic regression (C=10)."""

    def __init__(self) -> None:
        self.backbone = load_backbone(DEFAULT_BACKBONE)
        self.pre = self.backbone.preprocessing("multiclass")
        self.cache: dict[str, np.ndarray] = {}

    @torch.no_grad()  # not inference_mode: the head is fitted with autograd on these
    def features(self, examples: list[Example]) -> torch.Tensor:
        missing = [e for e in examples if str(e.path) not in self.cache]
        for lo in range(0, len(missing), 32):
            batch = missing[lo : lo + 32]
            x = torch.from_numpy(np.stack([to_input(load_image(e, draft_size(self.pre)), self.pre)[0] for e in batch]))
            for stage in self.backbone.stages:
                x = stage(x)
            for e, row in zip(batch, x.mean(dim=(2, 3)).numpy(), strict=True):
                self.cache[str(e.path)] = row
        rows = torch.from_numpy(np.stack([self.cache[str(e.path)] for e in examples]))
        return torch.nn.functional.normalize(rows, dim=1)

    def top1(self, train: list[Example], test: list[Example], classes: int) -> float:
        targets = torch.as_tensor([e.labels[0] for e in train])
        head = fit_linear_head(self.features(train), targets, classes, multilabel=False, c=PROBE_C)
        with torch.no_grad():
            predicted = head(self.features(test)).argmax(1).numpy()
        return 100.0 * float(np.mean(predicted == np.asarray([e.labels[0] for e in test])))


def run_one(name: str, train: list[Example], test: list[Example], labels: list[str], options: TrainOptions,
            export: bool, seed: int = 0) -> dict:
    wall, cpu = time.monotonic(), time.process_time()
    result = train_classifier(
        train,
        labels,
        multilabel=False,
        context=LocalContext.with_budget(3600.0, seed=seed),
        holdout=test,
        options=options,
    )
    scores, targets = result.holdout.scores, result.holdout.targets
    row = {
        "dataset": name,
        "train_images": len(train),
        "test_images": len(test),
        "top1": 100.0 * float(np.mean(scores.argmax(1) == targets)),
        "ece": expected_calibration_error(scores, targets),
        "wall_s": time.monotonic() - wall,
        "cpu_s": time.process_time() - cpu,
        "views": result.stats.views,
        "epochs": result.stats.finetune_epochs_planned,
        "method": result.stats.method,
        "head": result.stats.head,
        "temperature": result.stats.temperature,
    }
    if export:
        with tempfile.TemporaryDirectory() as out:
            row["onnx_max_abs_diff"] = export_classifier(result, Path(out))["max_abs_diff"]
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="where dataset names are looked up")
    parser.add_argument("--datasets", nargs="*", default=["cifar10", "gtsrb", "hemlock_cherry"],
                        help="dataset folders, or names under --data")
    parser.add_argument("--sample", action="store_true", help="also Loupe's generated sample set")
    parser.add_argument("--shots", nargs="+", type=int, default=[2, 5, 10])
    parser.add_argument("--variant", choices=["default", "linear"], default="default")
    parser.add_argument("--seed", type=int, default=0, help="the training seed (default 0)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    parser.add_argument("--export", action="store_true", help="also export and verify each model's ONNX")
    args = parser.parse_args()
    folders = [Path(d) if Path(d).is_dir() else args.data / d for d in args.datasets]
    folders = [f for f in folders if (f / "test.json").is_file()]
    if not folders and not args.sample:
        print(f"skipped: none of {args.datasets} found (the few-shot datasets live in the shared folder)")
        return 0
    options = TrainOptions(threads=args.threads)
    if args.variant == "linear":
        options = replace(options, finetune=False)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"variant={args.variant} seed={args.seed} threads={args.threads or os.cpu_count()}")
    print(f"{'dataset':15s} {'shots':>5s} {'train':>5s} {'test':>4s} {'top1%':>6s} {'probe%':>6s} {'delta':>6s} "
          f"{'ece':>6s} {'azure%':>6s} {'views':>5s} {'epochs':>6s} {'method':>8s} {'head':>11s} {'T':>5s} "
          f"{'wall_s':>7s} {'cpu_s':>7s}",
          flush=True)
    probe, rows = Probe(), []
    with tempfile.TemporaryDirectory() as scratch:
        sets: list[tuple[str, object]] = [(f.name, f) for f in folders]
        if args.sample:
            sets.append(("sample", sample_set(Path(scratch))))
        for name, source in sets:
            for shots in args.shots:
                if isinstance(source, Path):
                    train, labels = load_split(source, f"train_{shots}shot")
                    test, test_labels = load_split(source, "test")
                    assert test_labels == labels, f"{name}: test categories differ from training categories"
                else:
                    (all_train, labels), (test, _) = source["train"], source["test"]
                    train = first_k(all_train, shots)
                row = run_one(name, train, test, labels, options, args.export, args.seed)
                row.update(shots=shots, probe=probe.top1(train, test, len(labels)))
                rows.append(row)
                extra = f" onnx_diff={row['onnx_max_abs_diff']:.1e}" if "onnx_max_abs_diff" in row else ""
                print(f"{name:15s} {shots:5d} {row['train_images']:5d} {row['test_images']:4d} {row['top1']:6.1f} "
                      f"{row['probe']:6.1f} {row['top1'] - row['probe']:+6.1f} {row['ece']:6.3f} "
                      f"{AZURE.get(shots, float('nan')):6.1f} {row['views']:5d} {row['epochs']:6d} "
                      f"{row['method']:>8s} {row['head']:>11s} {row['temperature']:5.2f} "
                      f"{row['wall_s']:7.1f} {row['cpu_s']:7.1f}{extra}", flush=True)
    for shots in args.shots:
        some = [r for r in rows if r["shots"] == shots]
        top1, floor = np.mean([r["top1"] for r in some]), np.mean([r["probe"] for r in some])
        below = sum(r["top1"] < r["probe"] for r in some)
        print(f"{'mean':15s} {shots:5d} {'':5s} {'':4s} {top1:6.1f} {floor:6.1f} {top1 - floor:+6.1f} "
              f"{np.mean([r['ece'] for r in some]):6.3f}   rows below the probe: {below}/{len(some)}")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
