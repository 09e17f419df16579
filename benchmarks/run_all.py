"""`make bench`: every benchmark in one go, each in its own process, printing its figures.

Benchmarks that read ../shared/datasets skip those parts when the folder is absent."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (script, arguments): quick settings for a full run on a 2-core machine
BENCHMARKS = [
    ("coco_validation.py", []),
    ("metrics.py", []),
    ("time_to_model.py", []),
    ("analyze_latency.py", []),
    ("customvision.py", ["--batches", "2", "--rounds", "3"]),
    ("classification_quality.py", []),
    ("backbone_probe.py", []),
    ("detection_quality.py", ["--sample"]),
    ("exports.py", []),
]


def main() -> int:
    failed = []
    for script, args in BENCHMARKS:
        path = HERE / script
        if not path.exists():
            print(f"--- {script}: not present, skipped")
            continue
        print(f"\n=== {script} {' '.join(args)}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(path), *args], cwd=HERE.parent)
        print(f"=== {script}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
