"""One runner for exported models: the lower-level calls evaluation scoring uses (class_scores,
detections), loading from a local folder, and scoring (loupe.runner.scoring) through them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from loupe.inference import (
    LocalModelFiles,
    ModelNotFound,
    ModelUnusable,
    analyze_result,
    decode_for,
    load_predictor_from_folder,
)
from loupe.runner.examples import Example
from loupe.runner.scoring import BATCH, classify, detect, score_exported
from tests.inference.builders import CLIP_MARGIN, DETECTOR_LABELS, FIXED_BOX
from tests.inference.conftest import MULTICLASS_LABELS
from tests.inference.images import encode, jpeg_with_orientation, noise_image, white_box_on_black

BRIGHT = (200, 60, 360, 180)  # in a 640 x 240 image; the detector's input is 128 x 96


def _folder(root: Path, files: dict[str, bytes], name: str = "model") -> Path:
    folder = root / name
    folder.mkdir()
    for file, data in files.items():
        (folder / file).write_bytes(data)
    return folder


def _example(path: Path, data: bytes, labels: list[int] | None = None) -> Example:
    path.write_bytes(data)
    return Example(path, path.name, labels=labels or [0])


def test_class_scores_run_a_batch_as_predict_runs_each_image(tmp_path, multiclass):
    predictor = load_predictor_from_folder(_folder(tmp_path, multiclass[0]))
    images = [noise_image(60 + 7 * i, 90 - 3 * i, i) for i in range(5)]
    scores = predictor.class_scores(images)
    assert scores.shape == (5, len(MULTICLASS_LABELS)) and scores.dtype == np.float32
    for image, row in zip(images, scores, strict=True):
        one = predictor.class_scores([image])[0]
        assert np.allclose(row, one, atol=1e-6)
        tags = predictor.predict(image)["tagsResult"]["values"]
        by_name = {t["name"]: t["confidence"] for t in tags}
        assert [by_name[name] for name in MULTICLASS_LABELS] == [float(str(v)) for v in one]
    assert predictor.class_scores([]).shape == (0, len(MULTICLASS_LABELS))
    with pytest.raises(TypeError, match="classifier"):
        predictor.detections(images[0])


def test_detections_are_unfiltered_float_boxes_in_original_pixels(tmp_path, detector_letterbox):
    predictor = load_predictor_from_folder(_folder(tmp_path, detector_letterbox))
    image = white_box_on_black(640, 240, BRIGHT)
    found = predictor.detections(image)
    # model order, nothing dropped: [clip 0.3, low 0.01, bright 0.9, fixed 0.5]
    assert found.labels.tolist() == [0, 0, 1, 2]
    assert np.allclose(found.scores, [0.3, 0.01, 0.9, 0.5])
    assert found.boxes.dtype == np.float64 and found.scores.dtype == np.float64
    scale = 0.2  # letterbox: min(128 / 640, 96 / 240)
    assert np.allclose(found.boxes[3], np.asarray(FIXED_BOX) / scale)
    # not clipped: the clip box reaches beyond the image
    assert np.allclose(found.boxes[0][:2], [-CLIP_MARGIN / scale] * 2)
    # predict() is these, filtered, clipped, rounded and sorted
    values = predictor.predict(image)["objectsResult"]["values"]
    assert [(v["tags"][0]["name"], v["tags"][0]["confidence"]) for v in values] == [
        ("bright", 0.9), ("fixed", 0.5), ("ring", 0.3)]
    # a reduced decode reports boxes in the original size it is given
    half = predictor.detections(image.resize((320, 120)), original_size=(640, 240))
    assert np.allclose(half.boxes[3], found.boxes[3])
    assert DETECTOR_LABELS[int(found.labels[2])] == "bright"
    with pytest.raises(TypeError, match="detector"):
        predictor.class_scores([image])


def test_loading_from_a_folder_checks_like_the_service(tmp_path, multiclass):
    folder = _folder(tmp_path, multiclass[0], "flowers")
    predictor = load_predictor_from_folder(folder)
    assert predictor.labels == MULTICLASS_LABELS
    assert predictor.version == LocalModelFiles(folder).version("anything")
    with pytest.raises(ModelNotFound):
        load_predictor_from_folder(tmp_path / "missing")
    pre = json.loads(multiclass[0]["preprocessing.json"])
    (folder / "preprocessing.json").write_text(json.dumps({**pre, "format_version": 99}))
    with pytest.raises(ModelUnusable, match="newer than this server reads") as info:
        load_predictor_from_folder(folder)
    assert str(folder) in info.value.message
    (folder / "preprocessing.json").write_text(json.dumps({**pre, "input_name": "pixels"}))
    with pytest.raises(ModelUnusable, match="names 'pixels'"):
        score_exported(folder, [])
    (folder / "labels.json").unlink()
    with pytest.raises(ModelUnusable, match="labels.json"):
        load_predictor_from_folder(folder)
    with pytest.raises(FileNotFoundError):
        LocalModelFiles(folder).read("flowers", "../flowers/model.onnx")


def test_scoring_classifiers_batches_what_serving_decodes(tmp_path, multiclass):
    predictor = load_predictor_from_folder(_folder(tmp_path, multiclass[0]))
    count = BATCH + 3  # a full batch and a partial one
    examples, served = [], []
    for i in range(count):
        data = encode(noise_image(80 + i, 120, i), "JPEG" if i % 2 else "PNG")
        examples.append(_example(tmp_path / f"{i}.img", data, [i % len(MULTICLASS_LABELS)]))
        served.append(predictor.class_scores([decode_for(predictor, data)[0]])[0])
    scores = classify(predictor, examples)
    assert scores.shape == (count, len(MULTICLASS_LABELS))
    assert np.allclose(scores, served, atol=1e-6)
    assert classify(predictor, []).shape == (0, len(MULTICLASS_LABELS))
    performance = score_exported(tmp_path / "model", examples)
    assert set(performance["tagPerformance"]) == set(MULTICLASS_LABELS)


def test_scoring_detectors_reports_draft_decoded_jpegs_in_original_pixels(tmp_path, detector_letterbox):
    predictor = load_predictor_from_folder(_folder(tmp_path, detector_letterbox))
    width, height = 4000, 1500  # displayed; stored rotated, decoded at a reduced scale
    bright = (1250, 375, 2250, 1125)
    data = jpeg_with_orientation(white_box_on_black(width, height, bright), 6, quality=90)
    rows = detect(predictor, _example(tmp_path / "big.jpg", data))
    assert rows.shape == (4, 6) and rows.dtype == np.float64
    assert rows[:, 0].tolist() == [0, 0, 1, 2] and rows[1, 1] == pytest.approx(0.01)  # low scores kept
    scale = min(128 / width, 96 / height)
    assert np.allclose(rows[3, 2:], np.asarray(FIXED_BOX) / scale)
    assert np.allclose(rows[2, 2:], bright, atol=1 / scale + 1)
    # the same boxes the analyze route reports, before its rounding
    served = analyze_result(predictor, data)["customModelResult"]["objectsResult"]["values"]
    box = served[0]["boundingBox"]
    assert np.allclose([box["x"], box["y"], box["x"] + box["w"], box["y"] + box["h"]], rows[2, 2:], atol=1)
