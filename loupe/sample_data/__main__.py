"""python -m loupe.sample_data OUT_DIR [--seed N]: writes every sample dataset to OUT_DIR/<name>/."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from loupe.sample_data.datasets import all_samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loupe.sample_data", description=__doc__)
    parser.add_argument("out_dir", type=Path, help="folder to write <dataset-name>/ folders into")
    parser.add_argument("--seed", type=int, default=0, help="non-negative seed (default 0)")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed must be non-negative, got {args.seed}")
    started = time.perf_counter()
    datasets = all_samples(args.seed)
    for ds in datasets:
        ds.write(args.out_dir / ds.name)
        print(f"{args.out_dir / ds.name}: {len(ds.coco['images'])} images, "
              f"{len(ds.coco['annotations'])} annotations")
    print(f"generated in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
