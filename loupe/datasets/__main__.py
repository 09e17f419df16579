"""python -m loupe.datasets convert SRC OUT: a folder or zip of labelled images in any layout of
docs/formats.md#layouts -> OUT/annotations.json (Azure COCO) + OUT/images/.

Exit codes (docs/formats.md#cli): 0 converted (warnings on stderr), 1 the input cannot be
converted (the message names the place in the source), 2 wrong usage."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loupe.formats import FormatError, convert


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loupe.datasets", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="convert a labelled dataset to Azure COCO (docs/formats.md)")
    conv.add_argument("src", type=Path, help="a folder or a .zip")
    conv.add_argument("out", type=Path, help="the folder to write annotations.json and images/ into")
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        print(f"error: {args.out} is not empty; give a new or empty folder", file=sys.stderr)
        return 2
    try:
        result = convert(args.src, args.out)
    except FormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{result.layout.value}: {result.images} images, {result.annotations} annotations, "
          f"{len(result.categories)} categories -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
