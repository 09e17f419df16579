"""Pretrained ImageNet backbones: the architectures (their names, weights and descriptions are
registered in ``trainer.starting_points``).

A backbone is a list of stages that maps a normalised image batch [N,3,H,W] to a feature map
[N,D,h,w], plus the input preprocessing its weights expect. Stages before ``tail_start`` stay
frozen (their outputs are cached); the tail may be fine-tuned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from loupe.artifacts import Preprocessing, TaskKind

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Backbone:
    name: str
    stages: nn.ModuleList
    feature_dim: int
    # stages[tail_start:] are the fine-tunable tail; stages[:tail_start] stay frozen
    tail_start: int
    input_size: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def preprocessing(self, task: TaskKind) -> Preprocessing:
        return Preprocessing(
            task=task,
            size=self.input_size,
            resize="stretch",
            mean=self.mean,
            std=self.std,
            backbone=self.name,
        )


def load_state(path: Path | str) -> dict[str, torch.Tensor]:
    # weights_only: a weights file must never be able to run code
    return torch.load(str(path), map_location="cpu", weights_only=True)


def efficientnet_lite(variant: int, weights: Path) -> Backbone:
    """EfficientNet-Lite<variant> (efficientnet-lite-pytorch) with the state dict in ``weights``."""
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name(f"efficientnet-lite{variant}")
    model.load_state_dict(load_state(weights), strict=True)
    size = EfficientNet.get_image_size(f"efficientnet-lite{variant}")
    stem = nn.Sequential(model._conv_stem, model._bn0, model._swish)
    head = nn.Sequential(model._conv_head, model._bn1, model._swish)
    stages = nn.ModuleList([stem, *model._blocks, head])
    # the tail: the blocks at 1/32 scale (the last two stages, 192 and 320 channels in Lite0) and
    # the 1x1 head conv; chosen by measurement (benchmarks/classification_quality.py)
    tail_blocks = sum(1 for b in model._blocks if b._block_args.output_filters >= 192)
    return Backbone(
        name=f"efficientnet_lite{variant}",
        stages=stages,
        feature_dim=model._bn1.num_features,
        tail_start=len(stages) - 1 - tail_blocks,
        input_size=(size, size),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),  # TF-Lite convention: (x - 127.5) / 127.5
    )


def resnet50(weights: Path) -> Backbone:
    """torchvision ResNet-50 with the state dict in ``weights``."""
    from torchvision.models import resnet50 as build

    model = build()
    model.load_state_dict(load_state(weights), strict=True)
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    stages = nn.ModuleList([stem, model.layer1, model.layer2, model.layer3, model.layer4])
    return Backbone(
        name="resnet50",
        stages=stages,
        feature_dim=2048,
        tail_start=4,
        input_size=(224, 224),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )


def convnext_tiny(weights: Path) -> Backbone:
    """torchvision ConvNeXt-Tiny with the state dict in ``weights``."""
    from torchvision.models import convnext_tiny as build

    model = build()
    model.load_state_dict(load_state(weights), strict=True)
    stages = nn.ModuleList(list(model.features))
    return Backbone(
        name="convnext_tiny",
        stages=stages,
        feature_dim=768,
        tail_start=6,
        input_size=(224, 224),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )
