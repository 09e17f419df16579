"""Object detection: ``train_detector``, the detector recipe (few-shot friendly, budget-driven,
resumable; registered for ``ModelKind.DETECTOR``), and ``export_detector`` (ONNX with
postprocessing, checked against torch).

Starting points by name (``trainer.starting_points``): the ImageNet backbones (offline default
EfficientNet-Lite0) and COCO-pretrained torchvision detectors whose weights the trainer image
bakes in.
"""
from trainer.detection.export import ExportMismatch, export_detector
from trainer.detection.options import DetectorOptions
from trainer.detection.train import DetectorResult, train_detector

__all__ = [
    "DetectorOptions",
    "DetectorResult",
    "ExportMismatch",
    "export_detector",
    "train_detector",
]
