"""What a detector is made of, as plain data: stored in checkpoints (a resumed run must rebuild
exactly the same network) and chosen from the training data by ``plan_config``."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

Architecture = Literal["fasterrcnn", "retinanet", "fcos"]

# FPN levels on the backbone's 1/8, 1/16 and 1/32 feature maps, plus extra coarser levels.
PYRAMID_STRIDES = (8, 16, 32)
INPUT_MULTIPLE = 32  # the coarsest backbone stride: inputs are never padded inside the network
DEFAULT_SCORE_THRESHOLD = 0.05
_SIZE_STEP = 32


class DetectorConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    backbone: str
    architecture: Architecture
    num_classes: int = Field(ge=1)
    input_size: tuple[int, int]  # (height, width), multiples of INPUT_MULTIPLE
    # how images become the input (loupe.artifacts.Preprocessing.resize); checkpoints from before
    # the choice existed were letterboxed
    resize: Literal["stretch", "letterbox"] = "letterbox"
    # per pyramid level (finest first): anchor sizes in input pixels; None: the pretrained detector's own
    anchor_sizes: tuple[tuple[float, ...], ...] | None = None
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)  # height / width
    fpn_channels: int = 64
    # backbone stages before this index stay frozen (ImageNet backbones)
    trainable_from: int = 0
    score_threshold: float = Field(DEFAULT_SCORE_THRESHOLD, ge=0.0, lt=1.0)
    nms_threshold: float = Field(0.5, gt=0.0, le=1.0)
    detections_per_image: int = Field(100, ge=1)


def _round_to(value: float, step: int) -> int:
    return max(step, round(value / step) * step)


def choose_input_size(sizes: Sequence[tuple[int, int]], box_sides: Sequence[float], *,
                      min_side: int, max_side: int) -> tuple[int, int]:
    """(height, width) of the letterboxed network input.

    The long side is the smallest that keeps small objects (10th percentile of their sides,
    relative to the long image side) at >= 32 px, within [min_side, max_side] and never beyond
    the images' own size (upscaling invents no detail). The aspect follows the images when
    nearly all share an orientation (less padding, less compute), else square.
    """
    sizes_arr = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)  # (width, height)
    long_sides = sizes_arr.max(axis=1)
    wanted = 32.0 / max(1e-3, float(np.percentile(box_sides, 10))) if len(box_sides) else float(max_side)
    side = min(float(max_side), max(float(min_side), wanted, 1.0))
    side = min(side, max(float(min_side), float(np.median(long_sides))))
    long_side = _round_to(side, _SIZE_STEP)
    ratios = sizes_arr[:, 1] / sizes_arr[:, 0]  # height / width
    if np.mean(ratios <= 1.0) >= 0.9:  # landscape
        short = _round_to(long_side * float(np.median(ratios[ratios <= 1.0])), _SIZE_STEP)
        return min(short, long_side), long_side
    if np.mean(ratios >= 1.0) >= 0.9:  # portrait
        short = _round_to(long_side / float(np.median(ratios[ratios >= 1.0])), _SIZE_STEP)
        return long_side, min(short, long_side)
    return long_side, long_side


def choose_anchors(architecture: Architecture, box_px: np.ndarray, levels: int
                   ) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...]]:
    """Anchor sizes per level and aspect ratios suited to the training boxes (in input pixels).

    Level l (stride 8 * 2^l) gets base * 2^l with base 32 (FPN's usual 4 x stride), halved when
    many objects are small, so the finest level still matches them; scales in between cover the
    octave. Ratios add 1:4 / 4:1 when elongated objects are common. FCOS uses the strides.
    """
    if architecture == "fcos":
        return tuple((float(8 * 2 ** level),) for level in range(levels)), (1.0,)
    sides = np.sqrt(np.prod(np.clip(box_px[:, 2:] - box_px[:, :2], 1e-3, None), axis=1)) if len(box_px) else \
        np.asarray([64.0])
    base = 16.0 if float(np.percentile(sides, 10)) < 28.0 else 32.0
    scales = (1.0, 2 ** (1 / 3), 2 ** (2 / 3)) if architecture == "retinanet" else (1.0, math.sqrt(2.0))
    sizes = tuple(tuple(round(base * 2 ** level * s, 1) for s in scales) for level in range(levels))
    ratios = [0.5, 1.0, 2.0]
    if len(box_px):
        aspect = (box_px[:, 3] - box_px[:, 1]) / np.maximum(box_px[:, 2] - box_px[:, 0], 1e-3)
        if np.mean(aspect < 0.35) >= 0.15:
            ratios.insert(0, 0.25)
        if np.mean(aspect > 2.8) >= 0.15:
            ratios.append(4.0)
    return sizes, tuple(ratios)
