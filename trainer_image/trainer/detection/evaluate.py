"""mAP@50 of the torch model on hold-out images, measured as evaluation measures the exported
model (``loupe.runner.scoring``): the same decoding, ``to_input`` and COCO metric; and the
per-image predictions behind the final measurement (holdout.json, ``loupe.artifacts.Holdout``)."""
from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from loupe.artifacts import Holdout, HoldoutImage, HoldoutSource, Preprocessing, relative_box
from loupe.imaging import EVALUATION_LIMITS, ImageRejected
from loupe.metrics.detection import detection_performance
from loupe.preprocess import decode_for_model, to_input
from trainer.detection.data import DetectionExample
from trainer.errors import ImagesRejected

# Hold-out evaluation should cost about this share of the training time at most; an image's
# evaluation (a forward pass) costs about a third of a training sample (forward and backward).
EVALUATION_SHARE = 0.2
_EVAL_COST = 1 / 3


class HoldoutSet:
    """Network inputs and ground truth of the hold-out images, prepared once."""

    def __init__(self, examples: Sequence[DetectionExample], pre: Preprocessing, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self.seconds = 0.0  # spent evaluating
        self.inputs: list[np.ndarray] = []
        self.scales: list[np.ndarray] = []  # input pixels -> original pixels, per coordinate
        self.truth: list[np.ndarray] = []
        self.examples = list(examples)
        self.sizes: list[tuple[int, int]] = []  # original (width, height) the predictions' pixels are of
        for ex in examples:
            try:
                picture, info = decode_for_model(ex.path.read_bytes(), EVALUATION_LIMITS, pre)
            except (OSError, ImageRejected) as exc:
                raise ImagesRejected([(ex.source or str(ex.path), getattr(exc, "message", str(exc)))]) from None
            tensor, transform = to_input(picture, pre)
            sx = info.width / picture.width / transform.scale_x
            sy = info.height / picture.height / transform.scale_y
            self.inputs.append(tensor)
            self.scales.append(np.asarray([sx, sy, sx, sy]))
            self.sizes.append((info.width, info.height))
            size = np.asarray([ex.width, ex.height, ex.width, ex.height])
            self.truth.append(np.column_stack([ex.labels.astype(np.float64), ex.boxes * size]).reshape(-1, 5))

    def __len__(self) -> int:
        return len(self.inputs)

    def every(self, samples_per_check: int) -> int:
        """Evaluate at every n-th check, n such that evaluation stays near EVALUATION_SHARE of the
        time: by counting work, not by the clock, so runs stay deterministic."""
        ratio = len(self.inputs) * _EVAL_COST / max(1, samples_per_check)
        return max(1, math.ceil(ratio / EVALUATION_SHARE))

    def map50(self, model: nn.Module, offset: int) -> float:
        return self.performance(model, offset)["meanAveragePrecision50"]

    def performance(self, model: nn.Module, offset: int) -> dict:
        """modelPerformance (loupe.metrics.detection_performance) of ``model`` on these images."""
        return self.metrics(self.predict(model, offset))

    def metrics(self, predictions: list[np.ndarray]) -> dict:
        """modelPerformance of ``predict``'s predictions."""
        return detection_performance(predictions, self.truth, self.labels)

    @torch.no_grad()
    def predict(self, model: nn.Module, offset: int) -> list[np.ndarray]:
        """Per image, (K, 6) [label, score, x1, y1, x2, y2] float64 in original-image pixels, every
        detection the model output."""
        tick = time.monotonic()
        was_training = model.training
        model.eval()
        try:
            device = next(model.parameters()).device
            predictions = []
            for tensor, scale in zip(self.inputs, self.scales, strict=True):
                out = model([torch.from_numpy(tensor).to(device)])[0]
                boxes = out["boxes"].cpu().numpy().astype(np.float64) * scale
                predictions.append(np.column_stack([
                    (out["labels"].cpu().numpy() - offset).astype(np.float64),
                    out["scores"].cpu().numpy().astype(np.float64), boxes]).reshape(-1, 6))
            return predictions
        finally:
            model.train(was_training)
            self.seconds += time.monotonic() - tick

    def holdout(self, predictions: list[np.ndarray], source: HoldoutSource) -> Holdout:
        """holdout.json of ``predict``'s predictions: boxes relative to each image, keyed by its COCO
        file_name."""
        images = []
        for ex, found, (width, height) in zip(self.examples, predictions, self.sizes, strict=True):
            truth = [(int(label), float(x1), float(y1), float(x2 - x1), float(y2 - y1))
                     for label, (x1, y1, x2, y2) in zip(ex.labels, ex.boxes, strict=True)]
            detections = [(int(row[0]), float(row[1]), *relative_box(*row[2:6].tolist(), width, height))
                          for row in found]
            images.append(HoldoutImage(key=ex.key, width=ex.width, height=ex.height, truth_boxes=truth,
                                       detections=detections))
        return Holdout(task="detection", labels=self.labels, source=source, images=images)
