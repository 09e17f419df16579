"""Object detection metrics: pycocotools COCOeval with vision-evaluation 0.2.14's
CocoMeanAveragePrecisionEvaluator settings (docs/wire-contract.md#metrics), so a Loupe detector reports what the retired
service reported.

- bbox IoU, thresholds 0.3/0.5/0.75/0.9, one area range "all" = [0, 1e10] px^2 (vision-evaluation keeps the
  four default ranges but only reads "all"; the other three cost time and change nothing), maxDets 300 per
  image and category, every box iscrowd=0 with area w*h.
- Every image takes part, with or without boxes: predictions on an image without ground truth are false
  positives of their category.
- Only categories with ground truth are evaluated (COCOeval's catIds come from the ground truth):
  predictions of a category absent from the ground truth are ignored, and that tag is left out of
  tagPerformance.
- meanAveragePrecisionXX = mean of precision[iou, :, :] over recall thresholds x categories, entries of -1 (no
  ground truth) excluded; tagPerformance[tag].averagePrecision50 = the same over one category at IoU 0.5.

No NaN can come out: where nothing is left to average (no ground truth at all) the value is 0.0, as in
vision-evaluation's _summarize, and a category with ground truth but no predictions has precision 0, not -1.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval, Params

from loupe.metrics._checks import as_float, check_boxes, check_labels

IOU_THRESHOLDS = (0.3, 0.5, 0.75, 0.9)
MAX_DETECTIONS = 300
AREA_ALL = (0.0, 1e10)  # pycocotools' default "all" range, in px^2
_REPORTED = {"meanAveragePrecision30": 0.3, "meanAveragePrecision50": 0.5, "meanAveragePrecision75": 0.75}
_TAG_IOU = 0.5


def coco_params() -> Params:
    params = Params(iouType="bbox")
    params.iouThrs = np.array(IOU_THRESHOLDS)
    params.areaRng = [list(AREA_ALL)]
    params.areaRngLbl = ["all"]
    params.maxDets = [MAX_DETECTIONS]
    return params


def _annotations(images: list[np.ndarray], with_score: bool) -> list[dict]:
    """COCO annotations of all images, ids from 1 (COCOeval reads id 0 as "unmatched")."""
    image_ids = np.repeat(np.arange(len(images)), [len(rows) for rows in images]).tolist()
    rows = np.concatenate([np.zeros((0, 6 if with_score else 5)), *images])
    x1, y1 = rows[:, -4], rows[:, -3]
    width, height = rows[:, -2] - x1, rows[:, -1] - y1
    boxes = np.column_stack([x1, y1, width, height]).tolist()
    areas = (width * height).tolist()
    labels = rows[:, 0].astype(int).tolist()
    annotations = [
        {"id": i + 1, "image_id": image_id, "category_id": label, "bbox": box, "area": area, "iscrowd": 0}
        for i, (image_id, label, box, area) in enumerate(zip(image_ids, labels, boxes, areas, strict=True))
    ]
    if with_score:
        for annotation, score in zip(annotations, rows[:, 1].tolist(), strict=True):
            annotation["score"] = score
    return annotations


def _coco(n_images: int, annotations: list[dict]) -> COCO:
    coco = COCO()
    coco.dataset = {
        "images": [{"id": i} for i in range(n_images)],
        "annotations": annotations,
        "categories": [{"id": c} for c in sorted({a["category_id"] for a in annotations})],
    }
    coco.createIndex()
    return coco


def run_cocoeval(predictions: list[np.ndarray], ground_truth: list[np.ndarray]) -> COCOeval:
    """COCOeval after evaluate() and accumulate(), on checked (K,6) predictions and (M,5) ground truth."""
    # pycocotools reports progress with print(): keep it off the caller's stdout
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = _coco(len(ground_truth), _annotations(ground_truth, with_score=False))
        coco_dt = _coco(len(predictions), _annotations(predictions, with_score=True))
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        params = coco_params()
        params.imgIds = evaluator.params.imgIds
        params.catIds = evaluator.params.catIds  # categories with ground truth only
        evaluator.params = params
        evaluator.evaluate()
        evaluator.accumulate()
    return evaluator


def mean_precision(precision: np.ndarray) -> float:
    """Mean over the entries that exist (-1 marks a category without ground truth); 0.0 if none do."""
    valid = precision[precision > -1]
    return float(valid.mean()) if valid.size else 0.0


def detection_performance(
    predictions: Sequence[np.ndarray], ground_truth: Sequence[np.ndarray], labels: Sequence[str]
) -> dict:
    """modelPerformance of an object detector.

    predictions: per image, (K, 6) rows [label_index, score, x1, y1, x2, y2] in pixels (K may be 0);
    ground_truth: per image, (M, 5) rows [label_index, x1, y1, x2, y2] in pixels (M may be 0);
    labels: tag names, label_index i is labels[i].
    """
    labels = check_labels(labels)
    if len(predictions) != len(ground_truth):
        raise ValueError(
            f"predictions: got {len(predictions)} images but ground_truth has {len(ground_truth)}; "
            "expected one entry per image in both"
        )
    predictions = [check_boxes(f"predictions[{i}]", p, 6, len(labels)) for i, p in enumerate(predictions)]
    ground_truth = [check_boxes(f"ground_truth[{i}]", g, 5, len(labels)) for i, g in enumerate(ground_truth)]

    evaluator = run_cocoeval(predictions, ground_truth)
    params = evaluator.params
    # precision: [iou T, recall R, category K, area A=1, maxDets M=1]
    precision = evaluator.eval["precision"][..., 0, 0]
    iou_index = {iou: i for i, iou in enumerate(IOU_THRESHOLDS)}

    performance: dict = {
        name: as_float(name, mean_precision(precision[iou_index[iou]])) for name, iou in _REPORTED.items()
    }
    tag_iou = iou_index[_TAG_IOU]
    performance["tagPerformance"] = {
        labels[cat_id]: {
            "averagePrecision50": as_float(
                f"tagPerformance.{labels[cat_id]}", mean_precision(precision[tag_iou, :, k])
            )
        }
        for k, cat_id in enumerate(params.catIds)
    }
    return performance
