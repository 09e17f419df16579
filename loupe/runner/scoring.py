"""Running an exported model (the artifact contract of loupe.artifacts) over local images and turning
its outputs into modelPerformance (and, for a training run's test set, holdout.json's per-image
predictions, from the same pass).

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

from loupe.artifacts import HOLDOUT_FILE, METRICS_FILE, Holdout, HoldoutImage, HoldoutSource, relative_box
from loupe.imaging import EVALUATION_LIMITS
from loupe.inference import Predictor, load_predictor_from_folder
from loupe.metrics.classification import classification_performance, multilabel_performance
from loupe.metrics.detection import detection_performance
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
    return _detect_sized(model, example)[0]


def _detect_sized(model: Predictor, example: Example) -> tuple[np.ndarray, tuple[int, int]]:
    """``detect``'s detections, and the original (width, height) their pixels are of."""
    picture, original_size = _decode(model, example)
    found = model.detections(picture, original_size=original_size)
    return np.column_stack([np.asarray(found.labels, np.float64), found.scores, found.boxes]), original_size


def ground_truth_boxes(image: Example) -> np.ndarray:
    """(G, 5) [label, x1, y1, x2, y2] float64 in original-image pixels."""
    rows = [[label, left * image.width, top * image.height, (left + w) * image.width, (top + h) * image.height]
            for label, left, top, w, h in image.boxes]
    return np.asarray(rows, np.float64).reshape(-1, 5)


def performance(model: Predictor, images: Sequence[Example]) -> dict:
    """modelPerformance of ``model`` on labelled ``images`` (labels indexed like model.labels)."""
    if model.preprocessing.task == "detection":
        return _detection_performance(model, [detect(model, image) for image in images], images)
    return _classification_performance(model, classify(model, images), images)


def with_measurement(performance: dict, holdout: Holdout | None) -> dict:
    """modelPerformance with ``measuredOn`` beside the wire contract's fields: which images the
    figures come from, how many, and whether they estimate a model trained on every image (held
    out of, or cross-validated on, the training images) rather than measure the model itself on a
    test set (docs/wire-contract.md#model-performance)."""
    if holdout is None:
        return performance
    source = holdout.source
    return dict(performance, measuredOn={"source": source, "images": len(holdout.images),
                                         "isEstimate": source not in ("test", "given")})


def performance_and_holdout(model: Predictor, images: Sequence[Example],
                            source: HoldoutSource = "test") -> tuple[dict, Holdout]:
    """``performance`` and, from the same predictions, holdout.json's per-image entries (keyed by
    each image's COCO file_name)."""
    task, labels = model.preprocessing.task, list(model.labels)
    if task == "detection":
        found = [_detect_sized(model, image) for image in images]
        entries = [_detection_entry(image, predictions, size)
                   for image, (predictions, size) in zip(images, found, strict=True)]
        result = _detection_performance(model, [predictions for predictions, _ in found], images)
    else:
        scores = classify(model, images)
        entries = [HoldoutImage(key=image.key, width=image.width, height=image.height,
                                truth_labels=sorted(image.labels), scores=[float(s) for s in row])
                   for image, row in zip(images, scores, strict=True)]
        result = _classification_performance(model, scores, images)
    return result, Holdout(task=task, labels=labels, source=source, images=entries)


def _detection_entry(image: Example, predictions: np.ndarray, size: tuple[int, int]) -> HoldoutImage:
    """holdout.json's entry of a detection image: its relative boxes as the COCO file gave them, and
    ``predictions`` ((K, 6) [label, score, x1, y1, x2, y2] in the pixels of a ``size`` image) made
    relative to the image."""
    width, height = size
    detections = [(int(row[0]), float(row[1]), *relative_box(*(float(v) for v in row[2:6]), width, height))
                  for row in predictions]
    truth = [(int(label), float(left), float(top), float(w), float(h)) for label, left, top, w, h in image.boxes]
    return HoldoutImage(key=image.key, width=image.width, height=image.height, truth_boxes=truth,
                        detections=detections)


def _detection_performance(model: Predictor, predictions: list[np.ndarray], images: Sequence[Example]) -> dict:
    return detection_performance(predictions, [ground_truth_boxes(i) for i in images], model.labels)


def _classification_performance(model: Predictor, scores: np.ndarray, images: Sequence[Example]) -> dict:
    if model.preprocessing.task == "multilabel":
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


def write_holdout(folder: Path, holdout: Holdout | None) -> Path | None:
    """holdout.json in ``folder`` when ``holdout`` has at least one image; else nothing."""
    if holdout is None or not holdout.images:
        return None
    path = folder / HOLDOUT_FILE
    path.write_text(holdout.to_json())
    return path
