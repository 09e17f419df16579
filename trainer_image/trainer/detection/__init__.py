"""Object detection: ``train_detector`` (few-shot friendly, budget-driven, resumable) and
``export_detector`` (ONNX with postprocessing, checked against torch).

Starting points by name (``available_starting_points``): the ImageNet backbones of
``trainer.backbones`` (offline default EfficientNet-Lite0) and COCO-pretrained torchvision
detectors whose weights the trainer image bakes in (``registry``).
"""
from trainer.detection.export import ExportMismatch, export_detector
from trainer.detection.options import DetectorOptions
from trainer.detection.registry import (
    DETECTION_WEIGHTS_DIR_ENV,
    PRETRAINED_DETECTORS,
    DetectorWeightsUnavailable,
    UnknownDetector,
    available_starting_points,
)
from trainer.detection.train import DetectorResult, train_detector

__all__ = [
    "DETECTION_WEIGHTS_DIR_ENV",
    "PRETRAINED_DETECTORS",
    "DetectorOptions",
    "DetectorResult",
    "DetectorWeightsUnavailable",
    "ExportMismatch",
    "UnknownDetector",
    "available_starting_points",
    "export_detector",
    "train_detector",
]
