"""Time to a model: from PUT /models/<name> to `succeeded`, on this machine, with the share spent
waiting/starting the trainer process, fetching data, training and exporting.

Runs a private Loupe (in-memory Azurite + the API in its own process + the local trainer backend).
Datasets: the generated sample classification set (4 classes x 5 images), and, where
../shared/datasets exists, hemlock_cherry 5-shot.

    .venv/bin/python benchmarks/time_to_model.py [--repeat N]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

from _stack import SHARED, BenchStack, shared_files

from loupe.sample_data import classification

GOAL_SECONDS = 60.0


def run_case(stack: BenchStack, label: str, dataset: str, repeat: int) -> list[dict]:
    rows = []
    for attempt in range(repeat):
        name = f"ttm-{dataset}-{attempt}"
        started = time.perf_counter()
        model = stack.train(name, dataset, "Generic-Classifier")
        wall = time.perf_counter() - started
        if model["status"] != "succeeded":
            raise SystemExit(f"{label}: {model['status']} {model.get('error')}")
        report = json.loads(stack.blob("models", f"{name}/training.json"))
        timings = report["timings"]
        phases = timings["phaseSeconds"]
        rows.append({
            "case": label, "wall": wall, "start": timings["queuedAndProcessStartSeconds"],
            "fetch": phases.get("downloading", 0.0),
            "train": sum(v for k, v in phases.items() if k in ("preparing", "extracting features", "training",
                                                               "evaluating")),
            "export": phases.get("exporting", 0.0) + phases.get("uploading", 0.0),
            "top1": model["modelPerformance"].get("accuracyTop1"),
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    rows = []
    with BenchStack() as stack:
        sample = classification("train", per_class=5)
        stack.register("sample-shapes", "imageClassification", sample.files())
        rows += run_case(stack, "sample (4 classes x 5)", "sample-shapes", args.repeat)
        hemlock = SHARED / "hemlock_cherry"
        if hemlock.exists():
            stack.register("hemlock-5shot", "imageClassification", shared_files(hemlock, "train_5shot.json"))
            rows += run_case(stack, "hemlock_cherry 5-shot", "hemlock-5shot", args.repeat)
        else:
            print(f"({hemlock} not found: hemlock_cherry skipped)")
    print(f"\n{'case':<24}{'PUT->succeeded':>15}{'start':>8}{'fetch':>8}{'train':>8}{'export':>8}{'top1*':>7}")
    for row in rows:
        other = row["wall"] - row["start"] - row["fetch"] - row["train"] - row["export"]
        print(f"{row['case']:<24}{row['wall']:>14.1f}s{row['start']:>7.1f}s{row['fetch']:>7.1f}s"
              f"{row['train']:>7.1f}s{row['export']:>7.1f}s{row['top1'] or 0:>7.2f}   (other {other:.1f}s)")
    for case in sorted({r["case"] for r in rows}):
        walls = [r["wall"] for r in rows if r["case"] == case]
        verdict = "meets" if statistics.median(walls) <= GOAL_SECONDS else "misses"
        print(f"{case}: median {statistics.median(walls):.1f} s - {verdict} the {GOAL_SECONDS:.0f} s goal")
    print("* top1 on the held-out part of the training set (no test set given)")


if __name__ == "__main__":
    main()
