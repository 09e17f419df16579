"""Where a detector starts from, by name.

- Any ImageNet backbone of ``trainer.backbones`` (offline default ``efficientnet_lite0``): a
  feature pyramid and detection head are trained from scratch on top (``model.build_on_backbone``).
- A COCO-pretrained torchvision detector (``PRETRAINED_DETECTORS``): detection pretraining is
  what helps few-shot detection most, but no such weights ship in any package installable
  offline. The trainer image downloads them at build time (``python -m trainer.detection.bake_weights``)
  into ``$LOUPE_DETECTION_WEIGHTS_DIR/<name>.pth``; at run time they are only ever read from there.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.models import detection as tv_detection
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor

from trainer.backbones import (
    DEFAULT_BACKBONE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Backbone,
    available_backbones,
    load_backbone,
)
from trainer.detection.config import DetectorConfig
from trainer.detection.model import PreprocessedInput, build_on_backbone, stabilise

DETECTION_WEIGHTS_DIR_ENV = "LOUPE_DETECTION_WEIGHTS_DIR"


class UnknownDetector(ValueError):
    pass


class DetectorWeightsUnavailable(RuntimeError):
    """A registered pretrained detector whose weights are not on this machine."""


@dataclass(frozen=True)
class PretrainedDetector:
    name: str
    description: str
    # the torchvision architecture with random weights and COCO's 91 classes
    build: Callable[[], nn.Module]
    # torchvision weights enum member the image build downloads, e.g. "X_Weights.COCO_V1"
    torchvision_weights: str
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


def _torchvision(builder: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        return getattr(tv_detection, builder)(weights=None, weights_backbone=None, num_classes=91)
    return build


PRETRAINED_DETECTORS: dict[str, PretrainedDetector] = {
    d.name: d for d in (
        PretrainedDetector(
            "fasterrcnn_mobilenet_v3_large_fpn_coco",
            "torchvision Faster R-CNN MobileNetV3-Large FPN, COCO (box mAP 32.8), fast on CPU",
            _torchvision("fasterrcnn_mobilenet_v3_large_fpn"),
            "FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1"),
        PretrainedDetector(
            "fasterrcnn_resnet50_fpn_v2_coco",
            "torchvision Faster R-CNN ResNet-50 FPN v2, COCO (box mAP 46.7), for GPUs",
            _torchvision("fasterrcnn_resnet50_fpn_v2"),
            "FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1"),
    )
}


def available_starting_points() -> dict[str, str]:
    """Every name ``train_detector(backbone=...)`` accepts, and what it is."""
    points = {name: f"ImageNet backbone: {text}" for name, text in available_backbones().items()}
    points.update({name: f"{d.description}; ${DETECTION_WEIGHTS_DIR_ENV}/{name}.pth"
                   for name, d in PRETRAINED_DETECTORS.items()})
    return points


def preferred_starting_point(requested: str, *, gpu: bool) -> str:
    """The default ImageNet backbone is replaced by a COCO-pretrained detector when the image has
    its weights baked in (detection pretraining is what helps few-shot detection most); an
    explicitly requested starting point is kept."""
    if requested != DEFAULT_BACKBONE:
        return requested
    folder = os.environ.get(DETECTION_WEIGHTS_DIR_ENV)
    order = ("fasterrcnn_resnet50_fpn_v2_coco", "fasterrcnn_mobilenet_v3_large_fpn_coco") if gpu else \
        ("fasterrcnn_mobilenet_v3_large_fpn_coco", "fasterrcnn_resnet50_fpn_v2_coco")
    for name in order:
        if folder and (Path(folder) / f"{name}.pth").is_file():
            return name
    return requested


def is_pretrained_detector(name: str) -> bool:
    return name in PRETRAINED_DETECTORS


def weights_file(name: str) -> Path:
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


def load_pretrained_detector(name: str) -> nn.Module:
    """The registered torchvision detector with its baked weights (91 COCO classes), in eval mode."""
    if name not in PRETRAINED_DETECTORS:
        raise UnknownDetector(f"unknown pretrained detector {name!r}; known: {', '.join(sorted(PRETRAINED_DETECTORS))}")
    path = weights_file(name)
    model = PRETRAINED_DETECTORS[name].build()
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


def normalisation(name: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(mean, std) the starting point's weights expect."""
    if name in PRETRAINED_DETECTORS:
        return PRETRAINED_DETECTORS[name].mean, PRETRAINED_DETECTORS[name].std
    backbone = load_backbone(name)
    return backbone.mean, backbone.std


def _adapt_pretrained(model: nn.Module, config: DetectorConfig) -> nn.Module:
    """A COCO detector -> one for ``config``'s categories: new box predictor, Loupe's input,
    the backbone body frozen (few shots cannot improve COCO features, only disturb them)."""
    if not isinstance(model, tv_detection.FasterRCNN):
        raise TypeError(f"pretrained detector {config.backbone!r} is a {type(model).__name__}; expected FasterRCNN")
    predictor = model.roi_heads.box_predictor
    model.roi_heads.box_predictor = FastRCNNPredictor(predictor.cls_score.in_features, config.num_classes + 1)
    model.roi_heads.score_thresh = config.score_threshold
    model.roi_heads.nms_thresh = config.nms_threshold
    model.roi_heads.detections_per_img = config.detections_per_image
    model.transform = PreprocessedInput(config.input_size)
    model.backbone.body.requires_grad_(False)
    return stabilise(model)


def build_detector(config: DetectorConfig, *, pretrained: bool = True, backbone: Backbone | None = None
                   ) -> nn.Module:
    """The network for ``config``. ``pretrained=False`` skips loading a pretrained detector's
    weights (a checkpoint will overwrite them all); ``backbone``: the ImageNet backbone, already
    loaded (it becomes part of the network), else it is loaded here."""
    if config.backbone in PRETRAINED_DETECTORS:
        model = load_pretrained_detector(config.backbone) if pretrained else PRETRAINED_DETECTORS[config.backbone].build()
        return _adapt_pretrained(model, config)
    return build_on_backbone(backbone or load_backbone(config.backbone), config)


def new_parameter_names(model: nn.Module, config: DetectorConfig) -> set[str]:
    """Parameters that start from random values (trained at the full learning rate); the rest
    are pretrained and only nudged."""
    if config.backbone in PRETRAINED_DETECTORS:
        prefix = ("roi_heads.box_predictor.",)
    else:
        prefix = ("backbone.fpn.", "rpn.", "roi_heads.", "head.")
    return {name for name, _ in model.named_parameters() if name.startswith(prefix)}
