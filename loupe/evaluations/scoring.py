"""Running an exported model (the artifact contract of loupe.artifacts) over local images, with
the serving preprocessing, and turning its outputs into modelPerformance.

Used by the trainer after export (held-out or test set) and by evaluation runs, so the reported
metrics are those of the very file that will serve predictions.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from loupe.artifacts import (
    LABELS_FILE,
    METRICS_FILE,
    MODEL_FILE,
    PREPROCESSING_FILE,
    Preprocessing,
    labels_from_json,
)
from loupe.datasets.download import LocalImage
from loupe.imaging import EVALUATION_LIMITS
from loupe.metrics import classification_performance, detection_performance, multilabel_performance
from loupe.preprocess import decode_for_model, to_input

BATCH = 16


class ExportedModel:
    def __init__(self, folder: Path) -> None:
        import onnxruntime

        self.preprocessing = Preprocessing.model_validate_json((folder / PREPROCESSING_FILE).read_bytes())
        self.labels = labels_from_json((folder / LABELS_FILE).read_bytes())
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(folder / MODEL_FILE), options,
                                                    providers=["CPUExecutionProvider"])

    def _inputs(self, image: LocalImage):
        """(tensor, transform, (scale_x, scale_y)): the last maps decoded pixels to original ones
        (JPEGs are decoded at a reduced scale, exactly as at prediction time)."""
        picture, info = decode_for_model(image.path.read_bytes(), EVALUATION_LIMITS, self.preprocessing)
        tensor, transform = to_input(picture, self.preprocessing)
        return tensor, transform, (info.width / picture.width, info.height / picture.height)

    def classify(self, images: Sequence[LocalImage]) -> np.ndarray:
        """(N, C) scores."""
        out = []
        for start in range(0, len(images), BATCH):
            batch = np.stack([self._inputs(image)[0] for image in images[start:start + BATCH]])
            out.append(self.session.run(None, {self.preprocessing.input_name: batch})[0])
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)

    def detect(self, image: LocalImage) -> np.ndarray:
        """(K, 6) [label, score, x1, y1, x2, y2] in original-image pixels."""
        tensor, transform, (scale_x, scale_y) = self._inputs(image)
        outputs = dict(zip([o.name for o in self.session.get_outputs()],
                           self.session.run(None, {self.preprocessing.input_name: tensor[None]})))
        boxes = transform.to_original(np.asarray(outputs["boxes"], np.float64).reshape(-1, 4))
        boxes[:, [0, 2]] *= scale_x
        boxes[:, [1, 3]] *= scale_y
        scores, labels = outputs["scores"], outputs["labels"]
        return np.column_stack([np.asarray(labels, np.float64), np.asarray(scores, np.float64), boxes])


def ground_truth_boxes(image: LocalImage) -> np.ndarray:
    rows = [[label, left * image.width, top * image.height, (left + w) * image.width, (top + h) * image.height]
            for label, left, top, w, h in image.boxes]
    return np.asarray(rows, np.float64).reshape(-1, 5)


def performance(model: ExportedModel, images: Sequence[LocalImage]) -> dict:
    """modelPerformance of ``model`` on labelled ``images`` (labels indexed like model.labels)."""
    task = model.preprocessing.task
    if task == "detection":
        predictions = [model.detect(image) for image in images]
        return detection_performance(predictions, [ground_truth_boxes(i) for i in images], model.labels)
    scores = model.classify(images)
    if task == "multilabel":
        targets = np.zeros((len(images), len(model.labels)), np.int64)
        for row, image in enumerate(images):
            targets[row, image.labels] = 1
        return multilabel_performance(scores, targets, model.labels)
    targets = np.asarray([image.labels[0] for image in images], np.int64)
    return classification_performance(scores, targets, model.labels)


def write_metrics(folder: Path, performance_: dict) -> Path:
    path = folder / METRICS_FILE
    path.write_text(json.dumps(performance_, indent=2, allow_nan=False))
    return path
