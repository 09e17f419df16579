"""Classification metrics: equal to vision-evaluation on random predictions, exact on hand-computed cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from loupe.metrics.classification import (
    binary_average_precision,
    classification_performance,
    multilabel_performance,
)
from tests.metrics import reference

TOL = 1e-6


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _labels(n: int) -> list[str]:
    return [f"tag{i}" for i in range(n)]


def _random_multiclass(seed: int, n: int, c: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, c, size=n)
    logits = rng.normal(size=(n, c)) + 1.5 * np.eye(c)[targets] * rng.random((n, 1))
    scores = _softmax(logits)
    if ties:
        # a coarse grid: equal scores inside rows (top-k ties) and across rows (AP threshold ties), and a tied
        # maximum in every fifth row (argmax ties for top-1, ECE and tag accuracy)
        scores = np.round(scores * 10) / 10
        rows = np.arange(0, n, 5)
        top = scores[rows].argmax(axis=1)
        scores[rows, (top + 1) % c] = scores[rows, top]
    return scores, targets


def _assert_matches_reference(scores: np.ndarray, targets: np.ndarray) -> None:
    ours = classification_performance(scores, targets, _labels(scores.shape[1]))
    ref = reference.multiclass(scores, targets)
    for field in ("accuracyTop1", "accuracyTop5", "averagePrecision", "calibrationECE"):
        assert ours[field] == pytest.approx(ref[field], abs=TOL), field
    assert [ours["tagPerformance"][name]["accuracy"] for name in _labels(scores.shape[1])] == pytest.approx(
        ref["tag_accuracy"], abs=TOL
    )


@pytest.mark.parametrize("c", [2, 3, 10])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True])
def test_multiclass_matches_vision_evaluation(seed: int, c: int, ties: bool) -> None:
    scores, targets = _random_multiclass(seed, n=200, c=c, ties=ties)
    if ties:
        # the case really has ties: across samples, and inside rows (tied argmax for some)
        assert len(np.unique(scores)) <= 11
        assert sum(np.sum(row == row.max()) > 1 for row in scores) >= 200 // 5
    _assert_matches_reference(scores, targets)


# vision-evaluation divides 0/0 for the absent class before its nan_to_num
@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
def test_multiclass_matches_vision_evaluation_with_a_class_absent_and_float32_scores() -> None:
    scores, targets = _random_multiclass(7, n=120, c=6, ties=False)
    targets[targets == 4] = 0  # class 4 never occurs
    _assert_matches_reference(scores.astype(np.float32), targets)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("c", [2, 5, 12])
def test_multilabel_matches_vision_evaluation(seed: int, c: int) -> None:
    rng = np.random.default_rng(100 + seed)
    targets = (rng.random((150, c)) < 0.3).astype(int)
    targets[:, 0] = 0  # a tag nobody has
    targets[0, 1] = 1  # at least one tag with positives
    logits = rng.normal(size=(150, c)) + 2 * targets * rng.random((150, 1))
    scores = np.round(1 / (1 + np.exp(-logits)), 2)  # rounded: ties across samples
    ours = multilabel_performance(scores, targets, _labels(c))
    ref = reference.multilabel(scores, targets)
    assert ours["averagePrecision"] == pytest.approx(ref["averagePrecision"], abs=TOL)
    assert set(ours["tagPerformance"]) == {f"tag{i}" for i in ref["tag_ap"]}
    for i, ap in ref["tag_ap"].items():
        assert ours["tagPerformance"][f"tag{i}"]["averagePrecision"] == pytest.approx(ap, abs=TOL)
    assert "tag0" not in ours["tagPerformance"]
    # vision-evaluation's top-k accuracy, ECE and tag-wise accuracy take class-index targets only
    assert set(ours) == {"averagePrecision", "tagPerformance"}


@pytest.mark.parametrize("seed", range(5))
def test_binary_average_precision_equals_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    positive = rng.random(300) < 0.2
    positive[0] = True
    scores = np.round(rng.random(300) + 0.3 * positive, 1)
    assert binary_average_precision(positive, scores) == pytest.approx(
        average_precision_score(positive, scores), abs=1e-12
    )


def test_hand_computed_multiclass() -> None:
    # predicted class (argmax): 0, 1, 2, 0; correct: yes, no, yes, no
    scores = np.array([[0.70, 0.20, 0.10], [0.05, 0.65, 0.30], [0.20, 0.30, 0.50], [0.50, 0.40, 0.10]])
    targets = np.array([0, 2, 2, 1])
    performance = classification_performance(scores, targets, ["a", "b", "c"])
    assert performance["accuracyTop1"] == pytest.approx(0.5)
    assert performance["accuracyTop5"] == 1.0  # k is capped at C=3: every target is in the top 3
    # AP per class: a 1.0 (its one positive ranks first); b 0.5 (its positive ranks second);
    # c 1.0 (both positives rank above every negative)
    assert performance["averagePrecision"] == pytest.approx((1.0 + 0.5 + 1.0) / 3)
    # bins (lo, hi] of width 1/15: 0.70 alone (1 correct), 0.65 alone (0 correct), the two 0.50 together
    # (1 correct); ECE = (|1 - 0.7| + |0 - 0.65| + |1 - 1.0|) / 4
    assert performance["calibrationECE"] == pytest.approx((0.3 + 0.65 + 0.0) / 4)
    assert performance["tagPerformance"] == {
        "a": {"accuracy": 1.0},
        "b": {"accuracy": 0.0},
        "c": {"accuracy": 0.5},
    }


def test_top5_counts_the_fifth_rank_but_not_the_sixth() -> None:
    ranked = np.array([0.30, 0.20, 0.15, 0.12, 0.10, 0.08, 0.05])  # class i has rank i + 1
    scores = np.stack([ranked, ranked, ranked])
    targets = np.array([4, 5, 0])  # rank 5 (hit), rank 6 (miss), rank 1 (hit)
    performance = classification_performance(scores, targets, _labels(7))
    assert performance["accuracyTop5"] == pytest.approx(2 / 3)
    assert performance["accuracyTop1"] == pytest.approx(1 / 3)


def test_class_absent_from_targets_is_left_out_of_average_precision_and_has_accuracy_zero() -> None:
    scores = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1]])
    targets = np.array([0, 1, 1])  # class "c" never occurs
    performance = classification_performance(scores, targets, ["a", "b", "c"])
    assert performance["averagePrecision"] == 1.0  # mean over a and b only, not (1 + 1 + 0) / 3
    assert performance["tagPerformance"]["c"] == {"accuracy": 0.0}


def test_perfect_predictions() -> None:
    targets = np.array([0, 1, 2, 1, 0])
    performance = classification_performance(np.eye(3)[targets], targets, ["a", "b", "c"])
    assert performance == {
        "accuracyTop1": 1.0,
        "accuracyTop5": 1.0,
        "averagePrecision": 1.0,
        "calibrationECE": 0.0,
        "tagPerformance": {"a": {"accuracy": 1.0}, "b": {"accuracy": 1.0}, "c": {"accuracy": 1.0}},
    }


def test_all_wrong_and_confident() -> None:
    targets = np.array([0, 1, 2, 3, 4, 5])
    scores = np.eye(6)[(targets + 1) % 6]
    performance = classification_performance(scores, targets, _labels(6))
    assert performance["accuracyTop1"] == 0.0
    assert performance["calibrationECE"] == 1.0  # confidence 1, accuracy 0
    assert all(tag["accuracy"] == 0.0 for tag in performance["tagPerformance"].values())
    # C = 6 > 5: every target sits among the five zeros of its row, tied; the tie goes as numpy's argpartition
    # decides, the same call vision-evaluation makes
    assert performance["accuracyTop5"] == pytest.approx(reference.multiclass(scores, targets)["accuracyTop5"])


def test_perfect_multilabel() -> None:
    targets = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    performance = multilabel_performance(targets.astype(float), targets, ["a", "b", "c"])
    assert performance == {
        "averagePrecision": 1.0,
        "tagPerformance": {
            "a": {"averagePrecision": 1.0},
            "b": {"averagePrecision": 1.0},
            "c": {"averagePrecision": 1.0},
        },
    }


def test_tied_scores_count_as_one_threshold() -> None:
    # a positive and a negative at the same score: one threshold at precision 1/2, recall 1
    targets = np.array([[1, 0], [0, 1]])
    performance = multilabel_performance(np.array([[0.5, 0.1], [0.5, 0.9]]), targets, ["a", "b"])
    assert performance["tagPerformance"]["a"]["averagePrecision"] == 0.5
    assert performance["tagPerformance"]["b"]["averagePrecision"] == 1.0
    assert performance["averagePrecision"] == 0.75


def test_no_samples_gives_zeros() -> None:
    performance = classification_performance(np.zeros((0, 3)), np.zeros(0, dtype=int), ["a", "b", "c"])
    assert (
        performance["accuracyTop1"] == performance["averagePrecision"] == performance["calibrationECE"] == 0.0
    )
    assert multilabel_performance(np.zeros((0, 2)), np.zeros((0, 2)), ["a", "b"]) == {
        "averagePrecision": 0.0,
        "tagPerformance": {},
    }


def test_values_are_plain_floats_and_json_serialisable() -> None:
    scores, targets = _random_multiclass(3, n=50, c=4, ties=False)
    performance = classification_performance(scores.astype(np.float32), targets.astype(np.int32), _labels(4))
    assert type(performance["accuracyTop1"]) is float
    assert all(type(v["accuracy"]) is float for v in performance["tagPerformance"].values())
    assert json.loads(json.dumps(performance, allow_nan=False)) == performance


@pytest.mark.parametrize(
    ("scores", "targets", "labels", "message"),
    [
        (np.ones(3), np.zeros(3, dtype=int), ["a"], r"scores: expected an \(N, C\) array"),
        (
            np.full((2, 2), 0.5),
            np.zeros(2, dtype=int),
            ["a"],
            "labels: got 1 names but scores have 2 columns",
        ),
        (np.full((2, 2), 0.5), np.zeros(3, dtype=int), ["a", "b"], r"targets: expected shape \(2,\)"),
        (
            np.full((2, 2), 0.5),
            np.array([0, 2]),
            ["a", "b"],
            r"targets\[1\]: expected a class index in \[0, 2\), got 2",
        ),
        (np.full((2, 2), 0.5), np.array([0.0, 1.0]), ["a", "b"], "targets: expected integer class indices"),
        (
            np.array([[0.5, np.nan], [0.5, 0.5]]),
            np.array([0, 1]),
            ["a", "b"],
            r"scores\[0, 1\]: expected a finite",
        ),
        (
            np.array([[0.5, 0.5], [3.0, 0.5]]),
            np.array([0, 1]),
            ["a", "b"],
            r"scores\[1, 0\]: expected a probability",
        ),
        (np.full((2, 2), 0.5), np.array([0, 1]), ["a", "a"], r"labels\[1\]: duplicate name 'a'"),
    ],
)
def test_bad_multiclass_input_is_rejected_with_its_location(scores, targets, labels, message) -> None:
    with pytest.raises(ValueError, match=message):
        classification_performance(scores, targets, labels)


def test_bad_multilabel_targets_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"targets\[1, 0\]: expected 0 or 1, got 2"):
        multilabel_performance(np.full((2, 2), 0.5), np.array([[0, 1], [2, 0]]), ["a", "b"])
    with pytest.raises(ValueError, match=r"targets: expected shape \(2, 2\)"):
        multilabel_performance(np.full((2, 2), 0.5), np.array([0, 1]), ["a", "b"])
