"""Image classification (multiclass and multilabel): training within a time budget,
checkpoint/resume, and export to the model artifact contract."""

from trainer.classification.data import LabelledImage, holdout_split
from trainer.classification.export import ExportCheckFailed, export_classifier
from trainer.classification.train import (
    ClassifierResult,
    HoldoutPredictions,
    TrainingStats,
    TrainOptions,
    train_classifier,
)

__all__ = [
    "ClassifierResult",
    "ExportCheckFailed",
    "HoldoutPredictions",
    "LabelledImage",
    "TrainOptions",
    "TrainingStats",
    "export_classifier",
    "holdout_split",
    "train_classifier",
]
