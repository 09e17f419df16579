"""Running an exported model (the artifact contract of loupe.artifacts) over local images and turning
its outputs into modelPerformance.

Used by the trainer after export (held-out or test set) and by evaluation runs. The model is loaded
and run by loupe.inference's Predictor, exactly as the analyze route serves it (same checks, same
preprocessing, same box mapping), so the reported metrics are those of the very file that will
serve predictions. Images decode as serving decodes them (JPEG draft scale), under the evaluation
size limits.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from loupe.artifacts import METRICS_FILE
from loupe.imaging import EVALUATION_LIMITS
from loupe.inference import Predictor, load_predictor_from_folder
from loupe.metrics import classification_performance, detection_performance, multilabel_performance
from loupe.preprocess import decode_for_model
from loupe.runner.examples import Example

BATCH = 16  # classifier images per network run


def _decode(model: Predictor, example: Example) -> tuple[Image.Image, tuple[int, int]]:
    """The image as serving decodes it, and its original (width, height) after EXIF orientation."""
    picture, info = decode_for_model(example.path.read_bytes(), EVALUATION_LIMITS, model.preprocessing)
    return picture, (info.width, info.height)


def classify(model: Predictor, examples: Sequence[Example]) -> np.ndarray:
    """(N, C) scores of a classifier, index j for ``model.labels[j]``."""
    out = [model.class_scores([_decode(model, e)[0] for e in examples[start:start + BATCH]])
           for start in range(0, len(examples), BATCH)]
    return np.concatenate(out) if out else model.class_scores([])


def detect(model: Predictor, example: Example) -> np.ndarray:
    """(K, 6) [label, score, x1, y1, x2, y2] float64 of a detector, in original-image pixels,
    without score filtering (metrics need the low-score detections)."""
    picture, original_size = _decode(model, example)
    found = model.detections(picture, original_size=original_size)
    return np.column_stack([np.asarray(found.labels, np.float64), found.scores, found.boxes])


def ground_truth_boxes(image: Example) -> np.ndarray:
    """(G, 5) [label, x1, y1, x2, y2] float64 in original-image pixels."""
    rows = [[label, left * image.width, top * image.height, (left + w) * image.width, (top + h) * image.height]
            for label, left, top, w, h in image.boxes]
    return np.asarray(rows, np.float64).reshape(-1, 5)


def performance(model: Predictor, images: Sequence[Example]) -> dict:
    """modelPerformance of ``model`` on labelled ``images`` (labels indexed like model.labels)."""
    task = model.preprocessing.task
    if task == "detection":
        predictions = [detect(model, image) for image in images]
        return detection_performance(predictions, [ground_truth_boxes(i) for i in images], model.labels)
    scores = classify(model, images)
    if task == "multilabel":
        targets = np.zeros((len(images), len(model.labels)), np.int64)
        for row, image in enumerate(images):
            targets[row, image.labels] = 1
        return multilabel_performance(scores, targets, model.labels)
    targets = np.asarray([image.labels[0] for image in images], np.int64)
    return classification_performance(scores, targets, model.labels)


def score_exported(folder: Path, images: Sequence[Example]) -> dict:
    """modelPerformance of the exported model in ``folder`` on labelled ``images``; raises
    loupe.inference.ModelUnusable when the export breaks the artifact contract."""
    return performance(load_predictor_from_folder(folder), images)


def write_metrics(folder: Path, performance_: dict) -> Path:
    path = folder / METRICS_FILE
    path.write_text(json.dumps(performance_, indent=2, allow_nan=False))
    return path
