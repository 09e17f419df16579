"""Image classification (multiclass and multilabel): the classifier recipe ``train_classifier``
(registered for ``ModelKind.CLASSIFIER``), training within a time budget with checkpoint/resume,
and export to the model artifact contract."""

from trainer.classification.export import ExportCheckFailed, export_classifier
from trainer.classification.options import TrainOptions
from trainer.classification.result import ClassifierResult, HoldoutPredictions, TrainingStats
from trainer.classification.train import train_classifier

__all__ = [
    "ClassifierResult",
    "ExportCheckFailed",
    "HoldoutPredictions",
    "TrainOptions",
    "TrainingStats",
    "export_classifier",
    "train_classifier",
]
