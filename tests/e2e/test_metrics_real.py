"""modelPerformance on real predictions (the trained models of this session) equals Microsoft's
vision-evaluation on the same predictions, within 1e-6 (issue #4)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loupe.artifacts import LABELS_FILE, MODEL_FILE, PREPROCESSING_FILE
from loupe.inference import Predictor, load_predictor_from_folder
from loupe.metrics.classification import classification_performance
from loupe.metrics.detection import detection_performance
from loupe.runner.examples import Example
from loupe.runner.scoring import classify, detect, ground_truth_boxes
from tests.metrics import reference


def _exported(services, model: str, folder: Path) -> Predictor:
    """The trained model as evaluation scoring loads it."""
    container = services.storage.container(services.settings.models_container)
    for artifact in (MODEL_FILE, LABELS_FILE, PREPROCESSING_FILE):
        (folder / artifact).write_bytes(container.download_blob(f"{model}/{artifact}").readall())
    return load_predictor_from_folder(folder)


def _local_images(sample, labels: list[str], folder: Path) -> list[Example]:
    names = {c["id"]: labels.index(c["name"]) for c in sample.coco["categories"]}
    images = {}
    for image in sample.coco["images"]:
        path = folder / Path(image["file_name"]).name
        path.write_bytes(sample.images[image["file_name"]])
        images[image["id"]] = Example(path, image["file_name"], image["width"], image["height"])
    for annotation in sample.coco["annotations"]:
        local = images[annotation["image_id"]]
        label = names[annotation["category_id"]]
        if "bbox" in annotation:
            local.boxes.append((label, *annotation["bbox"]))
        if label not in local.labels:
            local.labels.append(label)
    return list(images.values())


def test_classifier_metrics_on_real_scores_match_vision_evaluation(services, trained_classifier, tmp_path):
    model, sample = trained_classifier
    exported = _exported(services, model, tmp_path)
    images = _local_images(sample, exported.labels, tmp_path)
    scores = classify(exported, images)
    targets = np.asarray([i.labels[0] for i in images])
    ours = classification_performance(scores, targets, exported.labels)
    theirs = reference.multiclass(scores, targets)
    for key in ("accuracyTop1", "accuracyTop5", "averagePrecision", "calibrationECE"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-6), key
    for index, label in enumerate(exported.labels):
        assert ours["tagPerformance"][label]["accuracy"] == pytest.approx(theirs["tag_accuracy"][index], abs=1e-6)


def test_detector_metrics_on_real_boxes_match_vision_evaluation(services, trained_detector, tmp_path):
    model, sample, _, _ = trained_detector
    exported = _exported(services, model, tmp_path)
    images = _local_images(sample, exported.labels, tmp_path)
    predictions = [detect(exported, image) for image in images]
    truth = [ground_truth_boxes(image) for image in images]
    assert sum(len(p) for p in predictions) > len(images)  # real detections, several per image
    ours = detection_performance(predictions, truth, exported.labels)
    theirs = reference.detection(predictions, truth)
    for key in ("meanAveragePrecision30", "meanAveragePrecision50", "meanAveragePrecision75"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-6), key
    for index, label in enumerate(exported.labels):
        assert ours["tagPerformance"][label]["averagePrecision50"] == pytest.approx(
            theirs["tag_ap50"][index], abs=1e-6)
