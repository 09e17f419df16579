"""Wire enums of the retired service (docs/wire-contract.md#enums). Values are case-exact on the wire."""
from __future__ import annotations

from enum import Enum


class AnnotationKind(str, Enum):
    CLASSIFICATION = "imageClassification"
    DETECTION = "imageObjectDetection"


class ModelKind(str, Enum):
    CLASSIFIER = "Generic-Classifier"
    DETECTOR = "Generic-Detector"
    PRODUCT_RECOGNIZER = "Product-Recognizer"

    @property
    def annotation_kind(self) -> AnnotationKind:
        return AnnotationKind.CLASSIFICATION if self is ModelKind.CLASSIFIER else AnnotationKind.DETECTION

    @classmethod
    def for_annotation_kind(cls, kind: AnnotationKind) -> "ModelKind":
        return cls.CLASSIFIER if kind is AnnotationKind.CLASSIFICATION else cls.DETECTOR


class StorageAuthKind(str, Enum):
    NONE = "none"
    MANAGED_IDENTITY = "managedIdentity"
    SAS = "sas"


class TrainingErrorCode(str, Enum):
    """model.error.code values of the retired service (docs/wire-contract.md#training-errors)."""

    DIVERGED = "diverged"
    NOT_ENOUGH_BUDGET = "notEnoughBudget"
    DATASET_CORRUPT = "datasetCorrupt"
    DATASET_NOT_FOUND = "datasetNotFound"
    UNKNOWN = "unknown"
    # Loupe-specific, for jobs that never report back (killed, timed out, vanished)
    # the documented code is `unknown`; the message says which.


class EvaluationErrorCode(str, Enum):
    INTERNAL = "internalServerError"
    MODEL_NOT_FOUND = "modelNotFound"
    DATASET_NOT_FOUND = "datasetNotFound"
    DATASET_CORRUPT = "datasetCorrupt"
    INCORRECT_MODEL_KIND = "incorrectModelKind"
