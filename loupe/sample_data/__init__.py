"""Generated sample datasets (no third-party images): rendered objects on varied, cluttered
backgrounds, for the demo, tests and benchmarks. See datasets.py."""
from loupe.sample_data.datasets import (
    CLASSIFICATION_KINDS,
    DETECTION_KINDS,
    SampleDataset,
    all_samples,
    classification,
    detection,
    multilabel,
)

__all__ = [
    "CLASSIFICATION_KINDS",
    "DETECTION_KINDS",
    "SampleDataset",
    "all_samples",
    "classification",
    "detection",
    "multilabel",
]
