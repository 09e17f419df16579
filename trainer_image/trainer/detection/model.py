"""torchvision detectors on Loupe's backbones.

Two kinds of starting point, by name (see ``trainer.starting_points``):
- an ImageNet backbone (offline default EfficientNet-Lite0): its
  1/8, 1/16 and 1/32 feature maps feed a feature pyramid (FPN), under a Faster R-CNN, RetinaNet
  or FCOS head trained from scratch;
- a COCO-pretrained torchvision detector whose weights were baked into the image: its head gets
  a new box predictor for the user's categories.

Either way the network takes the exact tensor ``loupe.preprocess.to_input`` makes (letterboxed,
normalised): the torchvision transform inside is reduced to batching, so no resize or
normalisation happens twice, and the ONNX export computes what was trained.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import boxes as box_ops
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool, LastLevelP6P7

from trainer.backbones import Backbone
from trainer.detection.config import PYRAMID_STRIDES, DetectorConfig
from trainer.starting_points import (
    is_pretrained_detector,
    load_backbone,
    load_pretrained_detector,
    starting_point,
)

BOX_HEAD_DIM = 512  # Faster R-CNN box head width: half torchvision's 1024 (trained from scratch on few images; CPU time)
# proposals per image the box head trains on (torchvision: 512); few-shot images hold few objects,
# and the head's cost (and roi_align's slow CPU backward) grows with this
BOX_SAMPLES = 128


class PreprocessedInput(GeneralizedRCNNTransform):
    """Inputs arrive letterboxed and normalised by ``to_input``; only batching is left."""

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__(min(size), max(size), [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], size_divisible=32)

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        return image

    def resize(self, image, target=None):
        return image, target


# Ties in NMS ranking are broken by position: subtracting index * TIE_BREAK makes every score
# distinct, identically in torch and in onnxruntime.
TIE_BREAK = 1e-6


def _untie(scores: torch.Tensor) -> torch.Tensor:
    """[N, K] or [K] scores minus a tiny amount rising with the position along the last axis."""
    return scores - torch.arange(scores.shape[-1], dtype=scores.dtype, device=scores.device) * TIE_BREAK


class StableProposals(RegionProposalNetwork):
    """Proposal filtering whose result does not depend on how an implementation orders ties.

    Uniform regions (the letterbox padding, plain backgrounds) give many anchors exactly the same
    objectness and deltas, and boxes one stride apart overlap right at the NMS threshold; torch and
    onnxruntime sort such ties differently and keep different proposals (measured: up to 11% of
    them). Ranking by sign(x) log(1 + |x|) of the logits (monotonic, never saturating like the
    sigmoid) with ties broken by position keeps the same proposals everywhere. The RPN's score
    threshold is 0, so nothing else changes."""

    def filter_proposals(self, proposals, objectness, image_shapes, num_anchors_per_level):
        compressed = torch.sign(objectness) * torch.log1p(torch.abs(objectness))
        ranked = _untie(compressed.reshape(proposals.shape[0], -1)).reshape(objectness.shape)
        return super().filter_proposals(proposals, ranked, image_shapes, num_anchors_per_level)


class StableRoIHeads(RoIHeads):
    """torchvision's postprocess_detections, with NMS ranking boxes by log-probability with
    ties broken by position (see StableProposals): a confident head saturates softmax to exactly
    1.0, and identical proposals score identically. Scores and thresholds are the probabilities."""

    def postprocess_detections(self, class_logits, box_regression, proposals, image_shapes):
        num_classes = class_logits.shape[-1]
        boxes_per_image = [p.shape[0] for p in proposals]
        pred_boxes = self.box_coder.decode(box_regression, proposals).split(boxes_per_image, 0)
        pred_scores = F.softmax(class_logits, -1).split(boxes_per_image, 0)
        pred_ranks = F.log_softmax(class_logits, -1).split(boxes_per_image, 0)
        all_boxes, all_scores, all_labels = [], [], []
        for boxes, scores, ranks, image_shape in zip(pred_boxes, pred_scores, pred_ranks, image_shapes, strict=True):
            boxes = box_ops.clip_boxes_to_image(boxes, image_shape)
            labels = torch.arange(num_classes, device=class_logits.device).view(1, -1).expand_as(scores)
            # every (box, class) pair but the background is a candidate
            boxes, scores = boxes[:, 1:].reshape(-1, 4), scores[:, 1:].reshape(-1)
            ranks, labels = _untie(ranks[:, 1:].reshape(-1)), labels[:, 1:].reshape(-1)
            keep = torch.where(scores > self.score_thresh)[0]
            boxes, scores, ranks, labels = boxes[keep], scores[keep], ranks[keep], labels[keep]
            keep = box_ops.remove_small_boxes(boxes, min_size=1e-2)
            boxes, scores, ranks, labels = boxes[keep], scores[keep], ranks[keep], labels[keep]
            keep = box_ops.batched_nms(boxes, ranks, labels, self.nms_thresh)[: self.detections_per_img]
            all_boxes.append(boxes[keep])
            all_scores.append(scores[keep])
            all_labels.append(labels[keep])
        return all_boxes, all_scores, all_labels


def stabilise(model: nn.Module) -> nn.Module:
    """Swap in the tie-proof proposal filtering and postprocessing (same modules and weights,
    one method each differs; see StableProposals, StableRoIHeads)."""
    if isinstance(model, FasterRCNN):
        model.rpn.__class__ = StableProposals
        model.roi_heads.__class__ = StableRoIHeads
    return model


def _is_batchnorm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def freeze_batchnorm(model: nn.Module) -> None:
    """BatchNorm layers keep their pretrained statistics: a few images per batch make poor ones."""
    for module in model.modules():
        if _is_batchnorm(module):
            module.eval()


def stage_strides(stages: nn.ModuleList, probe: int = 64) -> list[int]:
    """The output stride of each stage, from one small dry run."""
    x = torch.zeros(1, 3, probe, probe)
    strides = []
    with torch.no_grad():
        for stage in stages:
            x = stage(x)
            strides.append(probe // x.shape[-1])
    return strides


class PyramidBackbone(nn.Module):
    """Registry backbone stages -> FPN feature maps. The last stage of each pyramid stride feeds
    the FPN; stages before ``trainable_from`` are frozen."""

    def __init__(self, backbone: Backbone, trainable_from: int, out_channels: int, extra_blocks: nn.Module) -> None:
        super().__init__()
        strides = stage_strides(backbone.stages)
        missing = [s for s in PYRAMID_STRIDES if s not in strides]
        if missing:
            raise ValueError(f"backbone {backbone.name!r} has no feature map at stride(s) {missing}; "
                             f"its stages have strides {strides}")
        self.taps = [max(i for i, s in enumerate(strides) if s == stride) for stride in PYRAMID_STRIDES]
        self.stages = backbone.stages[: self.taps[-1] + 1]
        self.trainable_from = trainable_from
        channels = []
        x = torch.zeros(1, 3, 64, 64)
        with torch.no_grad():
            for i, stage in enumerate(self.stages):
                x = stage(x)
                if i in self.taps:
                    channels.append(x.shape[1])
        self.fpn = FeaturePyramidNetwork(channels, out_channels, extra_blocks=extra_blocks)
        self.out_channels = out_channels
        for stage in self.stages[:trainable_from]:
            stage.requires_grad_(False)

    def train(self, mode: bool = True) -> PyramidBackbone:
        super().train(mode)
        for stage in self.stages[: self.trainable_from]:
            stage.eval()
        freeze_batchnorm(self)
        return self

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        features: OrderedDict[str, torch.Tensor] = OrderedDict()
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.taps:
                features[str(len(features))] = x
        return self.fpn(features)


def build_on_backbone(backbone: Backbone, config: DetectorConfig) -> nn.Module:
    """A detector with freshly initialised pyramid and head on a pretrained ImageNet backbone."""
    if config.anchor_sizes is None:
        raise ValueError("a detector on an ImageNet backbone needs anchor_sizes")
    channels = config.fpn_channels
    anchors = AnchorGenerator(config.anchor_sizes, (config.aspect_ratios,) * len(config.anchor_sizes))
    if config.architecture == "fasterrcnn":
        body = PyramidBackbone(backbone, config.trainable_from, channels, LastLevelMaxPool())
        levels = [str(i) for i in range(len(PYRAMID_STRIDES))]
        model = FasterRCNN(
            body, num_classes=None, rpn_anchor_generator=anchors,
            box_roi_pool=MultiScaleRoIAlign(levels, output_size=7, sampling_ratio=2),
            box_head=TwoMLPHead(channels * 7 * 7, BOX_HEAD_DIM),
            box_predictor=FastRCNNPredictor(BOX_HEAD_DIM, config.num_classes + 1),
            rpn_pre_nms_top_n_train=1000, rpn_pre_nms_top_n_test=500,
            rpn_post_nms_top_n_train=500, rpn_post_nms_top_n_test=300,
            rpn_batch_size_per_image=256, box_batch_size_per_image=BOX_SAMPLES,
            box_score_thresh=config.score_threshold, box_nms_thresh=config.nms_threshold,
            box_detections_per_img=config.detections_per_image,
        )
    elif config.architecture == "retinanet":
        body = PyramidBackbone(backbone, config.trainable_from, channels, LastLevelP6P7(channels, channels))
        model = RetinaNet(body, num_classes=config.num_classes, anchor_generator=anchors,
                          score_thresh=config.score_threshold, nms_thresh=config.nms_threshold,
                          detections_per_img=config.detections_per_image, topk_candidates=300)
    else:
        body = PyramidBackbone(backbone, config.trainable_from, channels, LastLevelP6P7(channels, channels))
        model = FCOS(body, num_classes=config.num_classes, anchor_generator=anchors,
                     score_thresh=config.score_threshold, nms_thresh=config.nms_threshold,
                     detections_per_img=config.detections_per_image, topk_candidates=300)
    model.transform = PreprocessedInput(config.input_size)
    return stabilise(model)


def pyramid_levels(config: DetectorConfig) -> int:
    """Anchor levels of the architecture: the backbone strides plus the FPN's extra levels."""
    return len(PYRAMID_STRIDES) + (1 if config.architecture == "fasterrcnn" else 2)


def label_offset(model: nn.Module) -> int:
    """torchvision's Faster R-CNN reserves label 0 for background; RetinaNet and FCOS do not."""
    return 1 if isinstance(model, FasterRCNN) else 0


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def to_targets(boxes: Sequence[torch.Tensor], labels: Sequence[torch.Tensor], offset: int) -> list[dict]:
    return [{"boxes": b, "labels": l + offset} for b, l in zip(boxes, labels, strict=True)]


def set_score_threshold(model: nn.Module, value: float) -> None:
    """The confidence below which the network drops detections (inside the exported graph too)."""
    if isinstance(model, FasterRCNN):
        model.roi_heads.score_thresh = value
    else:
        model.score_thresh = value


def _adapt_pretrained(model: nn.Module, config: DetectorConfig) -> nn.Module:
    """A COCO detector -> one for ``config``'s categories: new box predictor, Loupe's input,
    the backbone body frozen (few shots cannot improve COCO features, only disturb them)."""
    if not isinstance(model, FasterRCNN):
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
    if is_pretrained_detector(config.backbone):
        model = load_pretrained_detector(config.backbone) if pretrained else starting_point(config.backbone).build()
        return _adapt_pretrained(model, config)
    return build_on_backbone(backbone or load_backbone(config.backbone), config)


def new_parameter_names(model: nn.Module, config: DetectorConfig) -> set[str]:
    """Parameters that start from random values (trained at the full learning rate); the rest
    are pretrained and only nudged."""
    if is_pretrained_detector(config.backbone):
        prefix = ("roi_heads.box_predictor.",)
    else:
        prefix = ("backbone.fpn.", "rpn.", "roi_heads.", "head.")
    return {name for name, _ in model.named_parameters() if name.startswith(prefix)}
