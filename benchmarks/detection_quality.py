"""Benchmark: few-shot object detection quality of the trainer, mAP@50 on fixed test splits.

For each dataset and shot count: train_detector on ``train_<k>shot.json`` (the detection k-shot
files of ../shared/datasets: images sampled until every category has k images), export (``result.export``),
then score the exported ONNX model on ``test.json`` with loupe.runner.scoring (the same path
a job's evaluation takes). ``--sample`` adds Loupe's generated sample set
(loupe.sample_data.detection train/test). Prints one JSON line per run and a table of mAP@50
with wall and CPU seconds per run; the reference to aim at is Azure Image Analysis 4.0's
published few-shot averages, 49.2 / 68.2 / 75.0 mAP@50 at 2 / 5 / 10 shots.

    .venv/bin/python benchmarks/detection_quality.py [--datasets raccoon bccd /data/my_set]
        [--shots 2 5 10] [--sample] [--seed 0] [--threads 1] [--budget-hours 1] [--backbone efficientnet_lite0]
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "trainer_image")]

import torch
from trainer.context import LocalContext
from trainer.detection import DetectorOptions, train_detector

from loupe.runner.examples import examples_from_coco
from loupe.runner.scoring import score_exported

DEFAULT_ROOT = ROOT.parent / "shared" / "datasets"
AZURE_REFERENCE = {2: 49.2, 5: 68.2, 10: 75.0}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_split(folder: Path, file: str, labels: list[str] | None = None):
    coco = json.loads((folder / file).read_text())
    return examples_from_coco(coco, folder, labels)


def sample_splits(folder: Path):
    from loupe import sample_data

    out = []
    for split in ("train", "test"):
        data = sample_data.detection(split)
        data.write(folder / split)
        out.append(examples_from_coco(data.coco, folder / split))
    return out


def run_one(name: str, train, labels, test, args, options: DetectorOptions) -> dict:
    ctx = LocalContext.with_budget(args.budget_hours * 3600, seed=args.seed)
    wall, cpu = time.monotonic(), _cpu_seconds()
    result = train_detector(train, labels, context=ctx, starting_point=args.backbone, options=options)
    with tempfile.TemporaryDirectory() as folder:
        result.export(Path(folder))
        trained_wall, trained_cpu = time.monotonic() - wall, _cpu_seconds() - cpu
        scores = score_exported(Path(folder), test)
    return {
        "run": name, "train_images": len(train), "held_out": result.holdout_images, "test_images": len(test),
        "map50": round(100 * scores["meanAveragePrecision50"], 1),
        "map75": round(100 * scores["meanAveragePrecision75"], 1),
        "tags": {k: round(100 * v["averagePrecision50"], 1) for k, v in scores["tagPerformance"].items()},
        "iterations": result.iterations, "stop": result.stop_reason,
        "input": list(result.config.input_size),
        "wall_s": round(trained_wall, 1), "cpu_s": round(trained_cpu, 1),  # training + export
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="where dataset names are looked up")
    parser.add_argument("--datasets", nargs="*", default=["raccoon", "bccd", "fork_scissors"],
                        help="dataset folders in the few-shot layout, or names under --root")
    parser.add_argument("--shots", nargs="*", type=int, default=[2, 5, 10])
    parser.add_argument("--sample", action="store_true", help="also the generated sample set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the CPU is shared)")
    parser.add_argument("--budget-hours", type=float, default=1.0)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--options", default="{}", help="DetectorOptions overrides as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    options = DetectorOptions(**json.loads(args.options))

    rows = []
    if args.sample:
        with tempfile.TemporaryDirectory() as folder:
            (train, labels), (test, _) = sample_splits(Path(folder))
            rows.append(run_one("sample", train, labels, test, args, options))
            print(json.dumps(rows[-1]), flush=True)
    folders = [Path(d) if Path(d).is_dir() else args.root / d for d in args.datasets]
    missing = [str(f) for f in folders if not (f / "test.json").is_file()]
    if missing:
        print(f"not found (the few-shot datasets live in the shared folder): {', '.join(missing)}")
    folders = [f for f in folders if (f / "test.json").is_file()]
    if not folders and not args.sample:
        return 0
    for folder in folders:
        for shots in args.shots:
            train, labels = load_split(folder, f"train_{shots}shot.json")
            test, _ = load_split(folder, "test.json", labels)
            rows.append(run_one(f"{folder.name}/{shots}", train, labels, test, args, options))
            print(json.dumps(rows[-1]), flush=True)

    print("\n| run | train imgs | mAP@50 | mAP@75 | iterations (stop) | input | wall s | CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['train_images']} | {r['map50']} | {r['map75']} | {r['iterations']} ({r['stop']}) "
              f"| {r['input'][1]}x{r['input'][0]} | {r['wall_s']} | {r['cpu_s']} |")
    for shots in args.shots:
        values = [r["map50"] for r in rows if r["run"].endswith(f"/{shots}")]
        if values:
            reference = AZURE_REFERENCE.get(shots)
            print(f"{shots}-shot mean mAP@50: {sum(values) / len(values):.1f} over {len(values)} datasets"
                  + (f" (Azure's published average over 22 datasets: {reference})" if reference else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
