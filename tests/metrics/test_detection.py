"""Detection metrics: equal to vision-evaluation's CocoMeanAveragePrecisionEvaluator on random predictions,
exact on hand-computed cases, and quiet (pycocotools prints progress)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from loupe.metrics.detection import detection_performance
from tests.metrics import reference

TOL = 1e-6
MAP_FIELDS = ("meanAveragePrecision30", "meanAveragePrecision50", "meanAveragePrecision75")


def _boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    """n boxes x1, y1, x2, y2 from 8 to 300 px a side: small, medium and large in COCO's terms."""
    corner = rng.uniform(0, 600, size=(n, 2))
    return np.hstack([corner, corner + rng.uniform(8, 300, size=(n, 2))])


def _random_detection_set(
    seed: int, n_images: int, n_classes: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Ground truth of classes 0..n_classes-2 (the last class has none); predictions are jittered copies of
    most ground-truth boxes, some with a wrong label (the last class included), plus random false positives,
    with scores on a 0.01 grid (ties). Some images have no ground truth, some no predictions."""
    rng = np.random.default_rng(seed)
    predictions, ground_truth = [], []
    for image in range(n_images):
        n_gt = 0 if image % 7 == 3 else int(rng.integers(1, 6))
        gt = np.column_stack([rng.integers(0, n_classes - 1, n_gt), _boxes(rng, n_gt)])
        found = gt[rng.random(n_gt) < 0.8]
        size = np.tile(found[:, 3:5] - found[:, 1:3], 2)
        moved = found[:, 1:] + rng.normal(scale=0.06, size=size.shape) * size
        moved = np.hstack([np.minimum(moved[:, :2], moved[:, 2:]), np.maximum(moved[:, :2], moved[:, 2:])])
        relabel = rng.random(len(found)) < 0.1
        labels = np.where(relabel, rng.integers(0, n_classes, len(found)), found[:, 0])
        n_fp = int(rng.integers(0, 6))
        boxes = np.vstack([moved, _boxes(rng, n_fp)])
        labels = np.concatenate([labels, rng.integers(0, n_classes, n_fp)])
        scores = np.round(rng.random(len(boxes)), 2)
        pred = np.column_stack([labels, scores, boxes])
        predictions.append(pred[:0] if image % 11 == 5 else pred)
        ground_truth.append(gt)
    return predictions, ground_truth


def _assert_matches_reference(
    predictions: list[np.ndarray], ground_truth: list[np.ndarray], n_classes: int
) -> dict:
    labels = [f"tag{i}" for i in range(n_classes)]
    ours = detection_performance(predictions, ground_truth, labels)
    ref = reference.detection(predictions, ground_truth)
    for field in MAP_FIELDS:
        assert ours[field] == pytest.approx(ref[field], abs=TOL), field
    assert set(ours["tagPerformance"]) == {labels[c] for c in ref["tag_ap50"]}
    for c, ap in ref["tag_ap50"].items():
        assert ours["tagPerformance"][labels[c]]["averagePrecision50"] == pytest.approx(ap, abs=TOL)
    return ours


@pytest.mark.parametrize("seed", range(4))
def test_matches_vision_evaluation_on_random_predictions(seed: int) -> None:
    predictions, ground_truth = _random_detection_set(seed, n_images=40, n_classes=4)
    assert any(len(g) == 0 for g in ground_truth) and any(len(p) == 0 for p in predictions)
    ours = _assert_matches_reference(predictions, ground_truth, n_classes=4)
    # not a degenerate case: partly right, and stricter IoU scores lower
    assert 0.1 < ours["meanAveragePrecision75"] < ours["meanAveragePrecision30"] < 0.9
    assert "tag3" not in ours["tagPerformance"]  # predicted, but never in the ground truth


def test_keeps_only_the_300_best_predictions_per_image_and_class() -> None:
    gt = np.array([[0, 0, 0, 10, 10]])
    decoys = np.column_stack([np.zeros(300), np.full(300, 0.9), np.tile([500, 500, 510, 510], (300, 1))])
    hit = np.array([[0, 0.5, 0, 0, 10, 10]])  # the 301st by score: cut off
    performance = _assert_matches_reference([np.vstack([decoys, hit])], [gt], n_classes=1)
    assert performance["meanAveragePrecision50"] == 0.0
    # with one decoy fewer the hit is kept, at precision 1/300
    assert detection_performance([np.vstack([decoys[1:], hit])], [gt], ["tag0"])["meanAveragePrecision50"] > 0


def test_two_boxes_one_found_hand_computed() -> None:
    # one true positive (score 0.9) then one false positive (0.8) for two ground-truth boxes:
    # precision 1 up to recall 0.5, nothing beyond; COCO's 101 recall points 0.00..0.50 score 1 -> AP = 51/101
    predictions = [np.array([[0, 0.9, 0, 0, 10, 10], [0, 0.8, 50, 50, 60, 60]])]
    ground_truth = [np.array([[0, 0, 0, 10, 10], [0, 20, 20, 30, 30]])]
    performance = detection_performance(predictions, ground_truth, ["cat", "dog"])
    for field in MAP_FIELDS:
        assert performance[field] == pytest.approx(51 / 101, abs=1e-12)
    assert performance["tagPerformance"] == {
        "cat": {"averagePrecision50": pytest.approx(51 / 101, abs=1e-12)}
    }


def test_iou_threshold_decides_the_match() -> None:
    # IoU([0,0,10,6], [0,0,10,10]) = 60 / 100 = 0.6: a match at 0.3 and 0.5, a miss at 0.75
    performance = detection_performance(
        [np.array([[0, 0.7, 0, 0, 10, 6]])], [np.array([[0, 0, 0, 10, 10]])], ["a"]
    )
    assert performance["meanAveragePrecision30"] == pytest.approx(1.0)
    assert performance["meanAveragePrecision50"] == pytest.approx(1.0)
    assert performance["meanAveragePrecision75"] == 0.0


def test_class_with_ground_truth_but_no_predictions_counts_as_zero() -> None:
    predictions = [np.array([[0, 0.9, 0, 0, 10, 10]]), np.zeros((0, 6))]
    ground_truth = [np.array([[0, 0, 0, 10, 10]]), np.array([[1, 5, 5, 40, 40]])]
    performance = _assert_matches_reference(predictions, ground_truth, n_classes=2)
    assert performance["tagPerformance"] == {
        "tag0": {"averagePrecision50": pytest.approx(1.0)},
        "tag1": {"averagePrecision50": 0.0},
    }
    assert performance["meanAveragePrecision50"] == pytest.approx(0.5)


def test_predictions_of_a_class_without_ground_truth_are_ignored() -> None:
    gt = [np.array([[0, 0, 0, 10, 10]])]
    alone = detection_performance([np.array([[0, 0.9, 0, 0, 10, 10]])], gt, ["a", "b"])
    with_b = detection_performance(
        [np.array([[0, 0.9, 0, 0, 10, 10], [1, 0.95, 0, 0, 10, 10]])], gt, ["a", "b"]
    )
    assert alone == with_b
    assert list(with_b["tagPerformance"]) == ["a"]


def test_perfect_predictions() -> None:
    ground_truth = [
        np.array([[0, 0, 0, 10, 10], [1, 20, 20, 50, 60]]),
        np.zeros((0, 5)),
        np.array([[1, 5, 5, 9, 9]]),
    ]
    predictions = [np.insert(g, 1, 0.9, axis=1) for g in ground_truth]
    performance = detection_performance(predictions, ground_truth, ["a", "b"])
    assert all(performance[field] == pytest.approx(1.0) for field in MAP_FIELDS)
    assert all(
        tag["averagePrecision50"] == pytest.approx(1.0) for tag in performance["tagPerformance"].values()
    )


def test_all_wrong() -> None:
    ground_truth = [np.array([[0, 0, 0, 10, 10]]), np.array([[1, 0, 0, 10, 10]])]
    predictions = [np.array([[1, 0.9, 0, 0, 10, 10]]), np.array([[1, 0.9, 100, 100, 110, 110]])]
    performance = _assert_matches_reference(predictions, ground_truth, n_classes=2)
    assert all(performance[field] == 0.0 for field in MAP_FIELDS)


def test_empty_sets_give_zero_not_nan() -> None:
    no_predictions = detection_performance(
        [np.zeros((0, 6))] * 2, [np.array([[0, 0, 0, 5, 5]]), np.zeros((0, 5))], ["a"]
    )
    assert no_predictions == {
        "meanAveragePrecision30": 0.0,
        "meanAveragePrecision50": 0.0,
        "meanAveragePrecision75": 0.0,
        "tagPerformance": {"a": {"averagePrecision50": 0.0}},
    }
    no_ground_truth = detection_performance([np.array([[0, 0.5, 0, 0, 5, 5]])], [np.zeros((0, 5))], ["a"])
    assert no_ground_truth == {
        "meanAveragePrecision30": 0.0,
        "meanAveragePrecision50": 0.0,
        "meanAveragePrecision75": 0.0,
        "tagPerformance": {},
    }
    assert detection_performance([], [], ["a"])["meanAveragePrecision50"] == 0.0
    assert json.dumps(no_predictions, allow_nan=False)


def test_accepts_lists_and_float32_and_returns_plain_floats() -> None:
    predictions = [np.array([[0, 0.9, 0, 0, 10, 10]], dtype=np.float32), [[0, 0.4, 1, 1, 9, 9]]]
    ground_truth = [[[0, 0, 0, 10, 10]], np.array([[0, 0, 0, 10, 10]], dtype=np.float32)]
    performance = detection_performance(predictions, ground_truth, ["a"])
    assert type(performance["meanAveragePrecision50"]) is float
    assert type(performance["tagPerformance"]["a"]["averagePrecision50"]) is float
    assert performance["meanAveragePrecision50"] == pytest.approx(1.0)


def test_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    predictions, ground_truth = _random_detection_set(9, n_images=5, n_classes=3)
    detection_performance(predictions, ground_truth, ["a", "b", "c"])
    out, err = capfd.readouterr()
    assert out == "" and err == ""


@pytest.mark.parametrize(
    ("predictions", "ground_truth", "message"),
    [
        ([np.zeros((0, 6))], [], "predictions: got 1 images but ground_truth has 0"),
        (
            [np.zeros((1, 5))],
            [np.zeros((0, 5))],
            r"predictions\[0\]: expected a \(K, 6\) array, got shape \(1, 5\)",
        ),
        (
            [np.zeros((0, 6))],
            [np.array([[2, 0, 0, 1, 1]])],
            r"ground_truth\[0\]\[0, 0\]: expected a label index in \[0, 2\)",
        ),
        (
            [np.array([[0.5, 0.9, 0, 0, 1, 1]])],
            [np.zeros((0, 5))],
            r"predictions\[0\]\[0, 0\]: expected a label index",
        ),
        (
            [np.array([[0, np.nan, 0, 0, 1, 1]])],
            [np.zeros((0, 5))],
            r"predictions\[0\]\[0, 1\]: expected a finite",
        ),
        (
            [np.zeros((0, 6))],
            [np.array([[0, 0, 0, 1, 1], [0, 5, 0, 1, 1]])],
            r"ground_truth\[0\]\[1\]: expected x1 <= x2 and y1 <= y2",
        ),
    ],
)
def test_bad_input_is_rejected_with_its_location(predictions, ground_truth, message) -> None:
    with pytest.raises(ValueError, match=message):
        detection_performance(predictions, ground_truth, ["a", "b"])
