"""An iteration's performance at the caller's thresholds (docs/customvision.md#performance).

The trainer keeps, for every image it held out of training (or a given test set), the model's
scores or detections (``holdout.json``, loupe.artifacts). Precision, recall and average precision
are computed per request from them, so ``threshold`` and ``overlapThreshold`` change the answer as
they did on Azure:

- classification: a tag is predicted when its probability is at least ``threshold``; precision and
  recall count (image, tag) pairs; average precision is per tag over the ranked probabilities
  (independent of the threshold) and its mean overall;
- detection: detections at or above ``threshold`` are matched greedily, highest score first, to
  unmatched true boxes of their tag with IoU at least ``overlapThreshold``; average precision is
  the all-point interpolated area under each tag's precision-recall curve.

Standard deviations are the binomial standard errors of each proportion, sqrt(p(1-p)/n): the
uncertainty that comes from the number of held-out images (Azure reported deviations across its
own evaluation runs; Loupe has one run, and says how sure its one estimate is).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from loupe.artifacts import Holdout, HoldoutImage
from loupe.metrics.classification import binary_average_precision


@dataclass
class Counts:
    true_positives: int = 0
    predicted: int = 0
    actual: int = 0

    def add(self, other: "Counts") -> None:
        self.true_positives += other.true_positives
        self.predicted += other.predicted
        self.actual += other.actual

    def figures(self) -> dict[str, float]:
        precision = self.true_positives / self.predicted if self.predicted else 0.0
        recall = self.true_positives / self.actual if self.actual else 0.0
        return {"precision": precision, "precisionStdDeviation": _stderr(precision, self.predicted),
                "recall": recall, "recallStdDeviation": _stderr(recall, self.actual)}


def _stderr(p: float, n: int) -> float:
    return math.sqrt(p * (1.0 - p) / n) if n else 0.0


def classification_counts(scores: np.ndarray, truth: np.ndarray, threshold: float) -> list[tuple[Counts, float]]:
    """Per tag: (counts at ``threshold``, average precision); ``truth`` is [N, C] 0/1."""
    out = []
    for tag in range(scores.shape[1]):
        predicted = scores[:, tag] >= threshold
        positive = truth[:, tag].astype(bool)
        counts = Counts(int(np.sum(predicted & positive)), int(np.sum(predicted)), int(np.sum(positive)))
        ap = binary_average_precision(positive, scores[:, tag]) if positive.any() else 0.0
        out.append((counts, float(ap)))
    return out


def iou(a: list[float], b: list[float]) -> float:
    """IoU of two normalised (left, top, width, height) boxes."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _matched(detections: list[tuple[int, float, list[float]]], truth: dict[int, list[list[float]]],
             overlap: float) -> list[tuple[float, bool]]:
    """(score, is a true positive) of one tag's detections over all images, highest score first."""
    used: dict[int, set[int]] = {image: set() for image in truth}
    flags = []
    for image, score, box in sorted(detections, key=lambda d: -d[1]):
        best, best_iou = None, overlap
        for index, candidate in enumerate(truth.get(image, [])):
            if index in used.get(image, set()):
                continue
            value = iou(box, candidate)
            if value >= best_iou:
                best, best_iou = index, value
        if best is not None:
            used[image].add(best)
        flags.append((score, best is not None))
    return flags


def _interpolated_ap(flags: list[tuple[float, bool]], actual: int) -> float:
    if not actual or not flags:
        return 0.0
    hits = np.cumsum([f for _, f in flags])
    precision = hits / np.arange(1, len(flags) + 1)
    recall = hits / actual
    # all-point interpolation: precision made monotone from the right, summed over recall steps
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * envelope))


def detection_counts(images: list[dict], n_tags: int, threshold: float, overlap: float) -> list[tuple[Counts, float]]:
    """Per tag: (counts at ``threshold`` and ``overlap``, average precision at ``overlap``).
    ``images``: {"truth": [[label, l, t, w, h]], "detections": [[label, score, l, t, w, h]]}."""
    out = []
    for tag in range(n_tags):
        truth = {i: [b[1:5] for b in image["truth"] if int(b[0]) == tag] for i, image in enumerate(images)}
        detections = [(i, float(d[1]), list(d[2:6])) for i, image in enumerate(images)
                      for d in image["detections"] if int(d[0]) == tag]
        actual = sum(len(boxes) for boxes in truth.values())
        flags = _matched(detections, truth, overlap)
        kept = [f for score, f in flags if score >= threshold]
        counts = Counts(sum(kept), len(kept), actual)
        out.append((counts, _interpolated_ap(flags, actual)))
    return out


def summarise(per_tag: list[tuple[Counts, float]], tags: list[tuple[str, str]]) -> dict[str, Any]:
    """IterationPerformance from per-tag counts; ``tags``: (id, name) in the model's label order.
    The overall average precision is the mean over tags that had true examples."""
    total = Counts()
    rows, aps = [], []
    for (counts, ap), (tag_id, name) in zip(per_tag, tags):
        total.add(counts)
        if counts.actual:
            aps.append(ap)
        rows.append({"id": tag_id, "name": name, **counts.figures(), "averagePrecision": ap})
    return {"perTagPerformance": rows, **total.figures(),
            "averagePrecision": float(np.mean(aps)) if aps else 0.0}


def iteration_performance(holdout: Holdout | None, tags: list[tuple[str, str]], threshold: float,
                          overlap: float) -> dict[str, Any]:
    """IterationPerformance at the given thresholds; ``tags``: (id, name) per model label, in the
    model's label order. No held-out images (an iteration too small to spare one): every figure 0."""
    if holdout is None or not holdout.images:
        return summarise([(Counts(), 0.0) for _ in tags], tags)
    if holdout.task == "detection":
        images = [{"truth": image.truth_boxes or [], "detections": image.detections or []} for image in holdout.images]
        return summarise(detection_counts(images, len(tags), threshold, overlap), tags)
    scores = np.asarray([image.scores for image in holdout.images], np.float64)
    truth = np.zeros_like(scores)
    for row, image in enumerate(holdout.images):
        truth[row, image.truth_labels or []] = 1
    return summarise(classification_counts(scores, truth, threshold), tags)


def image_predictions(image: HoldoutImage, tags: list[tuple[str, str]], detection: bool) -> list[dict[str, Any]]:
    """The wire's Prediction objects of one held-out image, most probable first."""
    if detection:
        found = [{"probability": float(score), "tagId": tags[int(label)][0], "tagName": tags[int(label)][1],
                  "boundingBox": {"left": left, "top": top, "width": width, "height": height}, "tagType": "Regular"}
                 for label, score, left, top, width, height in image.detections or []]
    else:
        found = [{"probability": float(score), "tagId": tags[i][0], "tagName": tags[i][1], "boundingBox": None,
                  "tagType": "Regular"} for i, score in enumerate(image.scores or [])]
    return sorted(found, key=lambda p: -p["probability"])


def truth_tags(image: HoldoutImage, tags: list[tuple[str, str]]) -> set[str]:
    labels = [int(b[0]) for b in image.truth_boxes or []] + list(image.truth_labels or [])
    return {tags[label][0] for label in labels}
