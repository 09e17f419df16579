"""Input checks shared by the metric functions: wrong shapes or values fail here with a message that names
the argument, the offending index and what was expected, instead of a numpy error deep in a metric."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# softmax/sigmoid outputs computed in float32 can overshoot [0, 1] by a rounding step
_PROBABILITY_TOLERANCE = 1e-6


def check_labels(labels: Sequence[str], n_classes: int | None = None) -> list[str]:
    labels = list(labels)
    if not all(isinstance(name, str) for name in labels):
        raise ValueError("labels: expected a list of strings (category names)")
    if n_classes is not None and len(labels) != n_classes:
        raise ValueError(
            f"labels: got {len(labels)} names but scores have {n_classes} columns (one per class)"
        )
    seen: set[str] = set()
    for i, name in enumerate(labels):
        if name in seen:
            # tagPerformance is keyed by name: two classes with one name would silently overwrite each other
            raise ValueError(f"labels[{i}]: duplicate name {name!r}; tagPerformance needs unique tag names")
        seen.add(name)
    return labels


def _first_bad(mask: np.ndarray) -> str:
    return ", ".join(str(int(i)) for i in np.argwhere(mask)[0])


def check_finite(name: str, array: np.ndarray) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{name}[{_first_bad(bad)}]: expected a finite number, got {array[bad][0]}")


def check_scores(scores: object, name: str = "scores") -> np.ndarray:
    """(N, C) probabilities, C >= 1; returned as float64."""
    array = np.asarray(scores)
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(f"{name}: expected an (N, C) array with C >= 1 classes, got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{name}: expected numbers, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    check_finite(name, array)
    outside = (array < -_PROBABILITY_TOLERANCE) | (array > 1 + _PROBABILITY_TOLERANCE)
    if outside.any():
        raise ValueError(
            f"{name}[{_first_bad(outside)}]: expected a probability in [0, 1], got {array[outside][0]}"
        )
    return array


def check_class_indices(targets: object, n_samples: int, n_classes: int) -> np.ndarray:
    """(N,) integer class indices in [0, C)."""
    array = np.asarray(targets)
    if array.shape != (n_samples,):
        raise ValueError(
            f"targets: expected shape ({n_samples},) (one class index per row of scores), got {array.shape}"
        )
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"targets: expected integer class indices, got dtype {array.dtype}")
    array = array.astype(np.int64, copy=False)
    outside = (array < 0) | (array >= n_classes)
    if outside.any():
        raise ValueError(
            f"targets[{_first_bad(outside)}]: expected a class index in [0, {n_classes}), "
            f"got {array[outside][0]}"
        )
    return array


def check_indicator_matrix(targets: object, shape: tuple[int, int]) -> np.ndarray:
    """(N, C) 0/1 multilabel targets (bool, int or float)."""
    array = np.asarray(targets)
    if array.shape != shape:
        raise ValueError(f"targets: expected shape {shape} (a 0/1 row per row of scores), got {array.shape}")
    not_binary = (array != 0) & (array != 1)
    if not_binary.any():
        raise ValueError(f"targets[{_first_bad(not_binary)}]: expected 0 or 1, got {array[not_binary][0]}")
    return array.astype(bool)


def check_boxes(name: str, boxes: object, n_columns: int, n_classes: int) -> np.ndarray:
    """One image's boxes: predictions [label, score, x1, y1, x2, y2] or truth [label, x1, y1, x2, y2]."""
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, n_columns))
    if array.ndim != 2 or array.shape[1] != n_columns:
        raise ValueError(f"{name}: expected a (K, {n_columns}) array, got shape {array.shape}")
    check_finite(name, array)
    label = array[:, 0]
    bad_label = (label != np.floor(label)) | (label < 0) | (label >= n_classes)
    if bad_label.any():
        row = int(np.argmax(bad_label))
        raise ValueError(f"{name}[{row}, 0]: expected a label index in [0, {n_classes}), got {label[row]}")
    x1, y1, x2, y2 = array[:, -4], array[:, -3], array[:, -2], array[:, -1]
    inverted = (x2 < x1) | (y2 < y1)
    if inverted.any():
        row = int(np.argmax(inverted))
        raise ValueError(
            f"{name}[{row}]: expected x1 <= x2 and y1 <= y2 (pixels), got {array[row, -4:].tolist()}"
        )
    return array


def as_float(name: str, value: float) -> float:
    """A metric as a plain JSON-safe float. Inputs are checked to be finite and every metric has a defined
    empty case, so a NaN here is a bug in this package, not bad input."""
    result = float(value)
    if not math.isfinite(result):
        raise AssertionError(f"metric {name} is {result}; metrics must be finite")
    return result
