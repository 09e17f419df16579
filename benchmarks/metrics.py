"""Benchmark: loupe.metrics.detection_performance beside raw pycocotools COCOeval on one synthetic set.

A deterministic 5,000-image detection set (8 classes, 5-10 ground-truth boxes and 20-50 predictions per image)
is scored by
  raw  - pycocotools as a user would drive it: COCO ground truth from a dataset dict,
         COCO.loadRes(detections),
         COCOeval with the same params (bbox, IoU 0.3/0.5/0.75/0.9, area "all", maxDets 300),
         evaluate() + accumulate(); inputs already in COCO JSON form, conversion untimed;
  ours - detection_performance() from the per-image numpy arrays: checks, COCO objects, COCOeval, summary;
and optionally vision-evaluation's CocoMeanAveragePrecisionEvaluator (--with-vision-evaluation, slower: it
evaluates four area ranges and reads one).
The mAP values must be identical (exit status 1 otherwise). Times are the best of --repeats runs, alternated.

    .venv/bin/python benchmarks/metrics.py [--images 5000] [--repeats 1] [--with-vision-evaluation]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

from loupe.metrics.detection import (  # noqa: E402
    IOU_THRESHOLDS,
    coco_params,
    detection_performance,  # noqa: E402
    mean_precision,
)

N_CLASSES = 8
WIDTH, HEIGHT = 640, 480


def synthetic_set(n_images: int, seed: int = 20240611) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per image: 5-10 ground-truth boxes [label, x1, y1, x2, y2]; 20-50 predictions [label, score, x1..y2]:
    one to three jittered copies of each ground-truth box (tighter copies score higher, 10% relabelled), the
    rest random false positives with low scores."""
    rng = np.random.default_rng(seed)
    predictions, ground_truth = [], []
    for _ in range(n_images):
        n_gt = int(rng.integers(5, 11))
        size = rng.uniform(16, 240, size=(n_gt, 2))
        corner = rng.uniform(0, 1, size=(n_gt, 2)) * ([WIDTH, HEIGHT] - size)
        gt = np.column_stack([rng.integers(0, N_CLASSES, n_gt), corner, corner + size])

        copies = np.repeat(np.arange(n_gt), rng.integers(1, 4, n_gt))
        noise = rng.normal(scale=rng.uniform(0.02, 0.25, size=(len(copies), 1)), size=(len(copies), 4))
        boxes = gt[copies, 1:] + noise * np.tile(size[copies], 2)
        boxes = np.hstack([np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])])
        labels = np.where(
            rng.random(len(copies)) < 0.1, rng.integers(0, N_CLASSES, len(copies)), gt[copies, 0]
        )
        scores = np.clip(
            1 - 2 * np.abs(noise).mean(axis=1) + rng.normal(scale=0.1, size=len(copies)), 0.01, 1
        )

        n_fp = max(0, int(rng.integers(20, 51)) - len(copies))
        fp_size = rng.uniform(16, 240, size=(n_fp, 2))
        fp_corner = rng.uniform(0, 1, size=(n_fp, 2)) * ([WIDTH, HEIGHT] - fp_size)
        fp = np.column_stack(
            [rng.integers(0, N_CLASSES, n_fp), rng.uniform(0.01, 0.6, n_fp), fp_corner, fp_corner + fp_size]
        )
        predictions.append(np.vstack([np.column_stack([labels, scores, boxes]), fp]))
        ground_truth.append(gt)
    return predictions, ground_truth


def coco_json(predictions: list[np.ndarray], ground_truth: list[np.ndarray]) -> tuple[dict, list[dict]]:
    """The same set as a COCO dataset dict and a detection-results list, the form raw pycocotools takes."""
    annotations = []
    for image_id, rows in enumerate(ground_truth):
        for label, x1, y1, x2, y2 in rows.tolist():
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(label),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
    dataset = {
        "images": [{"id": i} for i in range(len(ground_truth))],
        "annotations": annotations,
        "categories": [{"id": c} for c in range(N_CLASSES)],
    }
    results = [
        {"image_id": image_id, "category_id": int(label), "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score}
        for image_id, rows in enumerate(predictions)
        for label, score, x1, y1, x2, y2 in rows.tolist()
    ]
    return dataset, results


def raw_pycocotools(dataset: dict, results: list[dict]) -> dict:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(results), iouType="bbox")
        params = coco_params()
        params.imgIds, params.catIds = evaluator.params.imgIds, evaluator.params.catIds
        evaluator.params = params
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"][..., 0, 0]
    return {
        f"meanAveragePrecision{round(iou * 100)}": mean_precision(precision[t])
        for t, iou in enumerate(IOU_THRESHOLDS)
        if iou != 0.9
    }


def vision_evaluation(predictions: list[np.ndarray], ground_truth: list[np.ndarray]) -> dict:
    from vision_evaluation.evaluators import CocoMeanAveragePrecisionEvaluator

    evaluator = CocoMeanAveragePrecisionEvaluator()
    evaluator.add_predictions(
        [[[int(r[0]), *r[1:]] for r in p.tolist()] for p in predictions],
        [[[int(r[0]), *r[1:]] for r in g.tolist()] for g in ground_truth],
    )
    with contextlib.redirect_stdout(io.StringIO()):
        report = evaluator.get_report()
    return {f"meanAveragePrecision{n}": report[f"mAP_{n}"] for n in (30, 50, 75)}


def timed(fn, *args) -> tuple[tuple[float, float], dict]:
    """(wall, CPU) seconds and the result; on a shared machine the CPU time of this process is steadier."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return (time.perf_counter() - wall, time.process_time() - cpu), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--with-vision-evaluation", action="store_true")
    args = parser.parse_args()

    predictions, ground_truth = synthetic_set(args.images)
    dataset, results = coco_json(predictions, ground_truth)
    labels = [f"class{c}" for c in range(N_CLASSES)]
    print(
        f"{args.images} images, {N_CLASSES} classes, {len(dataset['annotations'])} ground-truth boxes, "
        f"{len(results)} predictions"
    )

    raw_times, our_times = [], []
    for _ in range(args.repeats):
        seconds, raw = timed(raw_pycocotools, dataset, results)
        raw_times.append(seconds)
        seconds, ours = timed(detection_performance, predictions, ground_truth, labels)
        our_times.append(seconds)

    def best(times: list[tuple[float, float]]) -> tuple[float, float]:
        return min(t[0] for t in times), min(t[1] for t in times)

    fields = list(raw)
    rows = [
        ("raw pycocotools (loadRes+evaluate+accumulate)", best(raw_times), raw),
        ("loupe detection_performance (from arrays)", best(our_times), ours),
    ]
    if args.with_vision_evaluation:
        seconds, ve = timed(vision_evaluation, predictions, ground_truth)
        rows.append(("vision-evaluation CocoMeanAveragePrecisionEvaluator", seconds, ve))
    print(f"{'':<52} {'wall s':>7} {'CPU s':>7}  mAP@IoU")
    for name, (wall, cpu), values in rows:
        maps = "  ".join(f"{f[20:]}={values[f]:.12f}" for f in fields)
        print(f"{name:<52} {wall:7.2f} {cpu:7.2f}  {maps}")
    (raw_wall, raw_cpu), (our_wall, our_cpu) = best(raw_times), best(our_times)
    print(f"time ratio loupe / raw pycocotools: wall {our_wall / raw_wall:.3f}, CPU {our_cpu / raw_cpu:.3f}")

    identical = all(ours[f] == raw[f] for f in fields)
    print(f"mAP identical to raw pycocotools: {identical}")
    if args.with_vision_evaluation:
        close = all(abs(ours[f] - ve[f]) <= 1e-12 for f in fields)
        print(f"mAP equal to vision-evaluation (1e-12): {close}")
        identical = identical and close
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
