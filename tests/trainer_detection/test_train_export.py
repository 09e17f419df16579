"""Train on drawn scenes, export, and use the export the ways Loupe does: evaluation
(loupe.runner.scoring.score_exported) and the prediction service (load_predictor)."""
from __future__ import annotations

import copy
import json
import random
from dataclasses import replace

import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image
from trainer.context import LocalContext
from trainer.detection import export_detector, train_detector
from trainer.detection.augment import network_input
from trainer.detection.data import decode, pixel_boxes, to_examples
from trainer.detection.export import DetectionGraph, ExportMismatch, _inputs, verify
from trainer.detection.model import set_score_threshold

from loupe.artifacts import Preprocessing
from loupe.inference import FolderModelFiles, load_predictor, load_predictor_from_folder
from loupe.preprocess import to_input
from loupe.runner.scoring import performance_and_holdout, score_exported
from tests.trainer_detection.conftest import COLOURS, FAST, LABELS, draw_scene, local_image, make_dataset


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    files = export_detector(trained, root / "shapes")
    return root, files


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _corners(box) -> list[float]:
    left, top, width, height = box
    return [left, top, left + width, top + height]


def test_training_converges_and_reports_what_it_did(trained):
    assert trained.iterations == trained.iterations_this_run == 60
    assert trained.stop_reason == "max_iterations"
    assert trained.losses[-1] < 0.6 * trained.losses[0]  # it learned something
    assert trained.preprocessing.task == "detection" and trained.preprocessing.resize == "letterbox"
    assert trained.preprocessing.size == (128, 160)  # the images' aspect, at the requested 160 px
    assert trained.labels == LABELS


def test_export_writes_the_artifact_contract(trained, exported):
    root, files = exported
    assert sorted(p.name for p in files) == ["detector_weights.pt", "labels.json", "model.onnx", "preprocessing.json"]
    assert json.loads((root / "shapes" / "labels.json").read_text()) == LABELS
    pre = Preprocessing.model_validate_json((root / "shapes" / "preprocessing.json").read_text())
    assert pre == trained.preprocessing
    session = onnxruntime.InferenceSession(str(root / "shapes" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.shape for i in session.get_inputs()] == [[1, 3, *pre.size]]
    assert [o.name for o in session.get_outputs()] == ["boxes", "scores", "labels"]
    scene = draw_scene([(0, (20, 20, 70, 70))], random.Random(0))
    boxes, scores, labels = session.run(None, {"image": to_input(scene, pre)[0][None]})
    assert boxes.dtype == np.float32 and scores.dtype == np.float32 and labels.dtype == np.int64
    assert boxes.shape == (len(scores), 4) and labels.shape == scores.shape
    assert np.all(scores >= pre.score_threshold) and np.all(np.diff(scores) <= 1e-3)  # best first
    assert np.all((labels >= 0) & (labels < len(LABELS)))


def test_exported_model_scores_well_on_new_scenes(exported, tmp_path):
    root, _ = exported
    test = make_dataset(tmp_path / "test", count=8, seed=99, negatives=0)
    result = score_exported(root / "shapes", test)
    assert result["meanAveragePrecision50"] > 0.8, result
    assert set(result["tagPerformance"]) == set(LABELS)
    # a training run's test set: the same measurement and holdout.json from one pass
    performance, holdout = performance_and_holdout(load_predictor_from_folder(root / "shapes"), test)
    assert performance == result
    assert holdout.task == "detection" and holdout.source == "test" and holdout.labels == LABELS
    assert [image.key for image in holdout.images] == [example.key for example in test]
    for image, example in zip(holdout.images, test, strict=True):
        assert image.truth_boxes == [tuple(box) for box in example.boxes]
        assert image.detections and all(0 <= v <= 1 for row in image.detections for v in row[2:])
        best = max(image.detections, key=lambda row: row[1])  # the best detection is on an object
        assert any(best[0] == box[0] and _iou(_corners(best[2:]), _corners(box[1:])) > 0.5
                   for box in example.boxes), (best, example.boxes)


def test_prediction_service_finds_the_objects_on_an_easy_image(exported, tmp_path):
    root, _ = exported
    predictor = load_predictor(FolderModelFiles(root), "shapes")
    objects = [(0, (14, 20, 60, 66)), (1, (96, 60, 142, 106))]
    # a bigger photo than the training images: boxes come back in its own pixels
    scene = draw_scene([(k, tuple(2 * v for v in box)) for k, box in objects], random.Random(5), size=(320, 256))
    found = predictor.predict(scene)["objectsResult"]["values"]
    for kind, box in objects:
        expected = [2 * v for v in box]
        hits = [o for o in found if o["tags"][0]["name"] == LABELS[kind] and o["tags"][0]["confidence"] > 0.5
                and _iou([o["boundingBox"]["x"], o["boundingBox"]["y"],
                          o["boundingBox"]["x"] + o["boundingBox"]["w"],
                          o["boundingBox"]["y"] + o["boundingBox"]["h"]], expected) > 0.6]
        assert hits, (LABELS[kind], expected, found[:5])


def test_a_model_with_nothing_to_report_returns_empty_outputs(trained, tmp_path):
    strict = trained.config.model_copy(update={"score_threshold": 0.999999})
    set_score_threshold(trained.model, strict.score_threshold)
    try:
        result = replace(trained, config=strict,
                         preprocessing=trained.preprocessing.model_copy(update={"score_threshold": 0.999999}))
        export_detector(result, tmp_path / "strict")
    finally:
        set_score_threshold(trained.model, trained.config.score_threshold)
    session = onnxruntime.InferenceSession(str(tmp_path / "strict" / "model.onnx"), providers=["CPUExecutionProvider"])
    image = Image.new("RGB", (160, 128), (230, 230, 230))
    boxes, scores, labels = session.run(None, {"image": to_input(image, result.preprocessing)[0][None]})
    assert boxes.shape == (0, 4) and scores.shape == (0,) and labels.shape == (0,) and labels.dtype == np.int64
    predictor = load_predictor(FolderModelFiles(tmp_path), "strict")
    assert predictor.predict(image) == {"objectsResult": {"values": []}}


def test_negative_images_and_portrait_images_are_fine(tmp_path):
    """Images without boxes train as negatives; a portrait image is letterboxed like any other,
    its boxes still on its objects."""
    images = make_dataset(tmp_path / "d", count=2, seed=4, negatives=2)
    rotated = tmp_path / "portrait.png"
    Image.open(images[0].path).transpose(Image.Transpose.ROTATE_90).save(rotated)
    w, h = images[0].width, images[0].height
    boxes = [(k, top, 1 - left - bw, bh, bw) for k, left, top, bw, bh in images[0].boxes]
    images.append(local_image(rotated, [], size=(h, w)))
    images[-1].boxes.extend(boxes)
    result = train_detector(images, LABELS, context=LocalContext.with_budget(3600),
                            options=replace(FAST, min_iterations=4, max_iterations=4))
    assert result.iterations == 4
    export_detector(result, tmp_path / "m")

    pre = result.preprocessing
    (portrait,) = to_examples(images[-1:], len(LABELS))
    picture = decode(portrait, pre)
    tensor, input_boxes, labels = network_input(picture, pixel_boxes(portrait, picture), portrait.labels, pre)
    assert len(input_boxes) == len(boxes)
    assert input_boxes[:, 2].max() <= pre.size[1] * h / w + 0.5  # inside the letterboxed image, left
    for (x1, y1, x2, y2), kind in zip(input_boxes, labels, strict=True):
        pixel = tensor[:, int((y1 + y2) / 2), int((x1 + x2) / 2)] * np.asarray(pre.std) + np.asarray(pre.mean)
        assert np.allclose(pixel * 255, COLOURS[kind], atol=30), (kind, pixel * 255)


def test_the_export_check_catches_a_graph_that_computes_something_else(trained, exported):
    """verify() against a torch model whose box head differs: the check must fail."""
    root, _ = exported
    session = onnxruntime.InferenceSession(str(root / "shapes" / "model.onnx"), providers=["CPUExecutionProvider"])
    verify(session, DetectionGraph(trained.model).eval(), _inputs(trained), trained.config.score_threshold)
    other = copy.deepcopy(trained.model)
    with torch.no_grad():
        other.roi_heads.box_predictor.bbox_pred.bias.add_(0.5)  # every box moves
    with pytest.raises(ExportMismatch, match="disagree on"):
        verify(session, DetectionGraph(other).eval(), _inputs(trained), trained.config.score_threshold)


def test_a_failed_check_leaves_no_model_file(trained, tmp_path, monkeypatch):
    import trainer.detection.export as export_module

    def disagree(*args, **kwargs):
        raise ExportMismatch("the ONNX model and the torch model disagree on 9 of 9 detections")

    monkeypatch.setattr(export_module, "verify", disagree)
    with pytest.raises(ExportMismatch):
        export_detector(trained, tmp_path / "bad")
    assert not (tmp_path / "bad" / "model.onnx").exists()


def test_the_result_is_a_trained_model_the_runner_can_use(trained, tmp_path):
    """The TrainedModel protocol of loupe.runner.training: export, holdout_performance, report."""
    trained.export(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["detector_weights.pt", "labels.json", "model.onnx",
                                                                  "preprocessing.json"]
    # few-shot: every image trains the model; the figures estimate it (a model trained without some)
    assert "meanAveragePrecision50" in trained.holdout_performance()
    assert trained.holdout_predictions().source == "split"
    report = json.loads(json.dumps(trained.report()))
    assert report["iterations"] == 60 and report["stop_reason"] == "max_iterations"
    assert report["architecture"] == "fasterrcnn" and report["input_size"] == [128, 160]
