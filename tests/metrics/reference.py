"""vision-evaluation 0.2.14, the reference the metrics must match (docs/wire-contract.md#metrics), driven the way the
retired service's fields map to its evaluators."""

from __future__ import annotations

import contextlib
import io

import numpy as np
from vision_evaluation.evaluators import (
    AveragePrecisionEvaluator,
    CocoMeanAveragePrecisionEvaluator,
    EceLossEvaluator,
    TagWiseAccuracyEvaluator,
    TagWiseAveragePrecisionEvaluator,
    TopKAccuracyEvaluator,
)


def _report(evaluator, scores, targets) -> dict:
    evaluator.add_predictions(scores, targets)
    return evaluator.get_report()


def multiclass(scores: np.ndarray, targets: np.ndarray) -> dict:
    return {
        "accuracyTop1": _report(TopKAccuracyEvaluator(1), scores, targets)["accuracy_top1"],
        "accuracyTop5": _report(TopKAccuracyEvaluator(5), scores, targets)["accuracy_top5"],
        "averagePrecision": _report(AveragePrecisionEvaluator(), scores, targets)["average_precision"],
        "calibrationECE": _report(EceLossEvaluator(15), scores, targets)["calibration_ece"],
        "tag_accuracy": _report(TagWiseAccuracyEvaluator(), scores, targets)["tag_wise_accuracy"],
    }


def multilabel(scores: np.ndarray, targets: np.ndarray) -> dict:
    """averagePrecision and {class index: AP}. TagWiseAveragePrecisionEvaluator returns a list over the
    classes with a positive sample only, in class order: map it back to class indices."""
    tag_wise = _report(TagWiseAveragePrecisionEvaluator(), scores, targets)["tag_wise_average_precision"]
    with_positives = np.flatnonzero(targets.any(axis=0))
    assert len(tag_wise) == len(with_positives)
    return {
        "averagePrecision": _report(AveragePrecisionEvaluator(), scores, targets)["average_precision"],
        "tag_ap": dict(zip(with_positives.tolist(), tag_wise, strict=True)),
    }


def detection(predictions: list[np.ndarray], ground_truth: list[np.ndarray]) -> dict:
    """mAP_30/50/75 and {label index: AP@50} from CocoMeanAveragePrecisionEvaluator (absolute coordinates)."""
    evaluator = CocoMeanAveragePrecisionEvaluator(report_tag_wise=[False, True, False, False])
    # it mutates its inputs (category remapping): give it plain lists with integer labels
    evaluator.add_predictions(
        [[[int(r[0]), *r[1:]] for r in p.tolist()] for p in predictions],
        [[[int(r[0]), *r[1:]] for r in g.tolist()] for g in ground_truth],
    )
    with contextlib.redirect_stdout(io.StringIO()):
        report = evaluator.get_report()
    return {
        "meanAveragePrecision30": report["mAP_30"],
        "meanAveragePrecision50": report["mAP_50"],
        "meanAveragePrecision75": report["mAP_75"],
        "tag_ap50": report.get("tag_wise_AP_50", {}),
    }
