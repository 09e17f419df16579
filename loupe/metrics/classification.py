"""Image classification metrics, computed as vision-evaluation 0.2.14 computes them (docs/wire-contract.md#metrics), so a
Loupe model reports what the retired service reported.

Field <- vision-evaluation evaluator:
- accuracyTop1/accuracyTop5 <- TopKAccuracyEvaluator(k): ties broken by np.argmax / np.argpartition exactly as
  there; k is capped at C, so with C <= 5 every sample is a top-5 hit (accuracyTop5 == 1.0).
- averagePrecision <- AveragePrecisionEvaluator (macro): mean of the one-vs-rest AP over the classes that have
  at least one positive sample; classes without ground truth are left out, not counted as 0.
- calibrationECE <- EceLossEvaluator(n_bins=15): top-1 confidence binned into (lo, hi] over
  np.linspace(0, 1, 16).
- tagPerformance[tag].accuracy <- TagWiseAccuracyEvaluator: recall of the argmax prediction per class; 0.0
  for a class with no samples (vision-evaluation's nan_to_num).
- multilabel: only averagePrecision and tagPerformance[tag].averagePrecision
  (TagWiseAveragePrecisionEvaluator). vision-evaluation's top-k accuracy, ECE and tag-wise accuracy assert
  (N,)-shaped class-index targets, i.e. they are defined for multiclass only, so they are not reported.
  Its tag-wise AP drops classes without a positive sample; here those tags are left out of tagPerformance.

The binary AP is sklearn.metrics.average_precision_score written out in numpy (the step integral
sum((R_n - R_{n-1}) * P_n) over distinct score thresholds), so the Function App and the trainer need no
scikit-learn/scipy; tests compare it with sklearn and vision-evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from loupe.metrics._checks import (
    as_float,
    check_class_indices,
    check_indicator_matrix,
    check_labels,
    check_scores,
)

ECE_BINS = 15


def binary_average_precision(positive: np.ndarray, scores: np.ndarray) -> float:
    """sklearn's average_precision_score for one class; `positive` must hold at least one True."""
    order = np.argsort(scores, kind="mergesort")[::-1]
    sorted_scores = scores[order]
    sorted_positive = positive[order]
    # the last index of each run of equal scores: tied samples enter the curve together
    threshold_idx = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_positive.size - 1]
    tps = np.cumsum(sorted_positive, dtype=np.float64)[threshold_idx]
    fps = 1 + threshold_idx - tps
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return max(0.0, float(np.sum(np.diff(recall, prepend=0.0) * precision)))


def macro_average_precision(positives: np.ndarray, scores: np.ndarray) -> tuple[float, dict[int, float]]:
    """Mean one-vs-rest AP over the classes with a positive sample, and the AP of each such class."""
    per_class = {
        c: binary_average_precision(positives[:, c], scores[:, c])
        for c in range(scores.shape[1])
        if positives[:, c].any()
    }
    mean = sum(per_class.values()) / len(per_class) if per_class else 0.0
    return mean, per_class


def top_k_accuracy(scores: np.ndarray, targets: np.ndarray, k: int) -> float:
    if len(targets) == 0:
        return 0.0
    k = min(k, scores.shape[1])
    if k == 1:
        top = np.argmax(scores, axis=1)[:, None]
    else:
        top = np.argpartition(scores, -k, axis=1)[:, -k:]
    return float(np.mean((top == targets[:, None]).any(axis=1)))


def expected_calibration_error(scores: np.ndarray, targets: np.ndarray, n_bins: int = ECE_BINS) -> float:
    if len(targets) == 0:
        return 0.0
    predicted = np.argmax(scores, axis=1)
    confidence = scores[np.arange(len(scores)), predicted]
    correct = predicted == targets
    edges = np.linspace(0, 1, n_bins + 1)
    gap = 0.0
    for lower, upper in zip(edges[:-1], edges[1:], strict=True):
        # (lower, upper]: a confidence of exactly 0 falls in no bin, as in vision-evaluation
        in_bin = (confidence > lower) & (confidence <= upper)
        gap += abs(float(correct[in_bin].sum()) - float(confidence[in_bin].sum()))
    return gap / len(targets)


def per_class_accuracy(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Fraction of each class's samples whose argmax prediction is that class; 0.0 for a class with none."""
    n_classes = scores.shape[1]
    predicted = np.argmax(scores, axis=1)
    support = np.bincount(targets, minlength=n_classes)
    hits = np.bincount(targets[predicted == targets], minlength=n_classes)
    return np.divide(hits, support, out=np.zeros(n_classes), where=support > 0)


def classification_performance(scores: np.ndarray, targets: np.ndarray, labels: Sequence[str]) -> dict:
    """modelPerformance of a multiclass classifier.

    scores: (N, C) probabilities (softmax); targets: (N,) class indices; labels: C tag names.
    """
    scores = check_scores(scores)
    labels = check_labels(labels, scores.shape[1])
    targets = check_class_indices(targets, len(scores), scores.shape[1])
    positives = np.zeros(scores.shape, dtype=bool)
    positives[np.arange(len(targets)), targets] = True
    average_precision, _ = macro_average_precision(positives, scores)
    accuracy = per_class_accuracy(scores, targets)
    return {
        "accuracyTop1": as_float("accuracyTop1", top_k_accuracy(scores, targets, 1)),
        "accuracyTop5": as_float("accuracyTop5", top_k_accuracy(scores, targets, 5)),
        "averagePrecision": as_float("averagePrecision", average_precision),
        "calibrationECE": as_float("calibrationECE", expected_calibration_error(scores, targets)),
        "tagPerformance": {
            name: {"accuracy": as_float(f"tagPerformance.{name}.accuracy", accuracy[i])}
            for i, name in enumerate(labels)
        },
    }


def multilabel_performance(scores: np.ndarray, targets: np.ndarray, labels: Sequence[str]) -> dict:
    """modelPerformance of a multilabel classifier.

    scores: (N, C) per-class probabilities (sigmoid); targets: (N, C) 0/1; labels: C tag names.
    Tags without a positive sample have no AP and are left out of tagPerformance.
    """
    scores = check_scores(scores)
    labels = check_labels(labels, scores.shape[1])
    positives = check_indicator_matrix(targets, scores.shape)
    average_precision, per_class = macro_average_precision(positives, scores)
    return {
        "averagePrecision": as_float("averagePrecision", average_precision),
        "tagPerformance": {
            labels[c]: {"averagePrecision": as_float(f"tagPerformance.{labels[c]}", ap)}
            for c, ap in per_class.items()
        },
    }
