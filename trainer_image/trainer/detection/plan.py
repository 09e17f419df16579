"""Choosing the network for the data: input size, anchors, frozen stages, preprocessing."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from loupe.artifacts import Preprocessing
from trainer.backbones import Backbone
from trainer.detection.config import DetectorConfig, choose_anchors, choose_input_size
from trainer.detection.data import DetectionExample
from trainer.detection.model import pyramid_levels, stage_strides
from trainer.detection.options import DetectorOptions
from trainer.starting_points import is_pretrained_detector, normalisation


def plan_config(examples: Sequence[DetectionExample], num_classes: int, backbone: str, options: DetectorOptions,
                loaded: Backbone | None) -> DetectorConfig:
    """The network for this data (``options`` resolved): input size from image and object
    sizes, anchors from boxes."""
    min_side, max_side = options.input_side
    sizes = [(ex.width, ex.height) for ex in examples]
    rel_sides = [math.sqrt((b[2] - b[0]) * ex.width * (b[3] - b[1]) * ex.height) / max(ex.width, ex.height)
                 for ex in examples for b in ex.boxes]
    input_size = choose_input_size(sizes, rel_sides, min_side=min_side, max_side=max_side)
    box_px = []
    for ex in examples:
        scale_x, scale_y = input_size[1] / ex.width, input_size[0] / ex.height
        if options.resize == "letterbox":
            scale_x = scale_y = min(scale_x, scale_y)
        box_px.extend(b * np.asarray([ex.width * scale_x, ex.height * scale_y] * 2) for b in ex.boxes)
    box_array = np.asarray(box_px, dtype=np.float64).reshape(-1, 4)
    pretrained = is_pretrained_detector(backbone)
    architecture = "fasterrcnn" if pretrained else options.architecture
    base = DetectorConfig(backbone=backbone, architecture=architecture, num_classes=num_classes,
                          input_size=input_size, resize=options.resize, fpn_channels=options.fpn_channels)
    if pretrained:
        return base
    sizes_, ratios = choose_anchors(architecture, box_array, pyramid_levels(base))
    if loaded is None:
        raise ValueError(f"{backbone!r} is an ImageNet backbone: pass it loaded")
    strides = stage_strides(loaded.stages)
    trainable_from = next((i for i, s in enumerate(strides) if s >= options.trainable_from_stride), len(strides))
    return base.model_copy(update={"anchor_sizes": sizes_, "aspect_ratios": ratios, "trainable_from": trainable_from})


def preprocessing_for(config: DetectorConfig, loaded: Backbone | None) -> Preprocessing:
    mean, std = (loaded.mean, loaded.std) if loaded is not None else normalisation(config.backbone)
    return Preprocessing(task="detection", size=config.input_size, resize=config.resize, mean=mean, std=std,
                         pad_value=0.0, output_names=["boxes", "scores", "labels"], backbone=config.backbone,
                         score_threshold=config.score_threshold)
