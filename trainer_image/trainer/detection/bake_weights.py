"""Build time only: download the COCO weights of the registered pretrained detectors
(``trainer.starting_points``, kind "detector") into the folder the trainer image sets as
$LOUPE_DETECTION_WEIGHTS_DIR. Training never downloads.

    python -m trainer.detection.bake_weights /opt/loupe/detection-weights [NAME ...]

(In the Dockerfile, on a build machine with internet access, e.g. ``az acr build``.)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torchvision.models import detection as tv_detection
from torchvision.models._api import WeightsEnum

from trainer.starting_points import (
    UnknownDetector,
    available_starting_points,
    is_pretrained_detector,
    starting_point,
)


def weights_of(name: str) -> WeightsEnum:
    """The torchvision weights entry of a registered detector (no download)."""
    if not is_pretrained_detector(name):
        known = ", ".join(available_starting_points("detector"))
        raise UnknownDetector(f"unknown pretrained detector {name!r}; known: {known}")
    enum_name, member = starting_point(name).torchvision_weights.split(".")
    return getattr(getattr(tv_detection, enum_name), member)


def bake(folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        state = weights_of(name).get_state_dict(progress=False)
        path = folder / f"{name}.pth"
        torch.save(state, path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.detection.bake_weights", description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("names", nargs="*", default=list(available_starting_points("detector")))
    args = parser.parse_args(argv)
    for path in bake(args.folder, args.names):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
