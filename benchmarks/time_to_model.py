"""Time to a model: from PUT /models/<name> to `succeeded`, on this machine, with the share spent
waiting/starting the trainer process, fetching data, training and exporting.

Runs a private Loupe (in-memory Azurite + the API in its own process + the local trainer backend).
Datasets: the generated sample classification set (4 classes x 5 images), and, where
../shared/datasets exists, hemlock_cherry 5-shot. ``--two-shot`` adds a classifier on cifar10 2-shot
and a detector on fork_scissors 2-shot: every model here is trained with the API's 1-hour budget,
which is a ceiling, not a target (issue 13: a tiny set must still finish in minutes).

    .venv/bin/python benchmarks/time_to_model.py [--repeat N] [--two-shot] [--cold] [--gap S]

Between runs it waits ``--gap`` seconds (default 10), as a user does between trainings: the local
host's standby trainer (``LOUPE_LOCAL_WARM_TRAINER``, docs/training.md#time-to-model) is started
when a job ends and needs a few seconds for its imports. ``--cold`` turns the standby off, so
every job starts a fresh process: run both to see what it buys.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

from _stack import SHARED, BenchStack, shared_files

from loupe.sample_data import classification

GOAL_SECONDS = 60.0
SAMPLE_GOAL_SECONDS = 30.0  # issue 13: the sample classifier, PUT to succeeded
# a 2-shot set under the 1-hour budget: done in minutes, not the hour
TWO_SHOT_GOAL_SECONDS = 600.0


def run_case(stack: BenchStack, label: str, dataset: str, repeat: int, kind: str = "Generic-Classifier",
             goal: float = GOAL_SECONDS, gap: float = 0.0) -> list[dict]:
    rows = []
    for attempt in range(repeat):
        time.sleep(gap)
        name = f"ttm-{dataset}-{attempt}"
        started = time.perf_counter()
        model = stack.train(name, dataset, kind)
        wall = time.perf_counter() - started
        if model["status"] != "succeeded":
            raise SystemExit(f"{label}: {model['status']} {model.get('error')}")
        report = json.loads(stack.blob("models", f"{name}/training.json"))
        timings = report["timings"]
        phases = timings["phaseSeconds"]
        rows.append({
            "case": label, "goal": goal, "wall": wall, "start": timings["queuedAndProcessStartSeconds"],
            "fetch": phases.get("downloading", 0.0),
            "train": sum(v for k, v in phases.items() if k in ("preparing", "extracting features", "training",
                                                               "evaluating")),
            "export": phases.get("exporting", 0.0) + phases.get("uploading", 0.0),
            # top-1 of a classifier, mAP@50 of a detector
            "score": model["modelPerformance"].get("accuracyTop1", model["modelPerformance"].get(
                "meanAveragePrecision50")),
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--two-shot", action="store_true",
                        help="also cifar10 2-shot (classifier) and fork_scissors 2-shot (detector)")
    parser.add_argument("--cold", action="store_true",
                        help="no standby trainer: every job starts a new process")
    parser.add_argument("--gap", type=float, default=10.0, help="seconds between runs (default 10)")
    args = parser.parse_args()
    rows = []
    print(f"standby trainer: {'off' if args.cold else 'on'}, {args.gap:.0f} s between runs")
    with BenchStack(**({"local_warm_trainer": "false"} if args.cold else {})) as stack:
        sample = classification("train", per_class=5)
        stack.register("sample-shapes", "imageClassification", sample.files())
        rows += run_case(stack, "sample (4 classes x 5)", "sample-shapes", args.repeat,
                         goal=SAMPLE_GOAL_SECONDS, gap=args.gap)
        hemlock = SHARED / "hemlock_cherry"
        if hemlock.exists():
            stack.register("hemlock-5shot", "imageClassification", shared_files(hemlock, "train_5shot.json"))
            rows += run_case(stack, "hemlock_cherry 5-shot", "hemlock-5shot", args.repeat, gap=args.gap)
        else:
            print(f"({hemlock} not found: hemlock_cherry skipped)")
        two_shot = [("cifar10", "imageClassification", "Generic-Classifier", "cifar10 2-shot"),
                    ("fork_scissors", "imageObjectDetection", "Generic-Detector", "fork_scissors 2-shot det")]
        for folder, annotation_kind, kind, label in two_shot if args.two_shot else []:
            if not (SHARED / folder).exists():
                print(f"({SHARED / folder} not found: {label} skipped)")
                continue
            stack.register(f"{folder}-2shot", annotation_kind, shared_files(SHARED / folder, "train_2shot.json"))
            rows += run_case(stack, label, f"{folder}-2shot", args.repeat, kind, TWO_SHOT_GOAL_SECONDS, args.gap)
    print(f"\n{'case':<26}{'PUT->succeeded':>15}{'start':>8}{'fetch':>8}{'train':>8}{'export':>8}{'score*':>8}")
    for row in rows:
        other = row["wall"] - row["start"] - row["fetch"] - row["train"] - row["export"]
        print(f"{row['case']:<26}{row['wall']:>14.1f}s{row['start']:>7.1f}s{row['fetch']:>7.1f}s"
              f"{row['train']:>7.1f}s{row['export']:>7.1f}s{row['score'] or 0:>8.2f}   (other {other:.1f}s)")
    for case in sorted({r["case"] for r in rows}):
        walls = [r["wall"] for r in rows if r["case"] == case]
        goal = next(r["goal"] for r in rows if r["case"] == case)
        verdict = "meets" if statistics.median(walls) <= goal else "misses"
        print(f"{case}: median {statistics.median(walls):.1f} s - {verdict} the {goal:.0f} s goal")
    print("* top-1 (classifiers) or mAP@50 (detectors), estimated on the training set (no test set given)")


if __name__ == "__main__":
    main()
