"""holdout.json: a training run uploads the per-image predictions behind its metrics, keyed by the
images' COCO file names - of the held-out training images, or of the given test set. A real
(short) classifier training through the job runner, against the session's Azurite."""
from __future__ import annotations

import json
import signal

import numpy as np
import pytest
from trainer.classification import train_classifier

from loupe.artifacts import (
    HOLDOUT_FILE,
    LABELS_FILE,
    METRICS_FILE,
    Holdout,
    HoldoutImage,
    holdout_from_json,
    labels_from_json,
    relative_box,
)
from loupe.datasets.requests import DatasetIn
from loupe.enums import AnnotationKind, ModelKind
from loupe.models.record import ModelRecord
from loupe.runner.training import TRAINING_REPORT_FILE, run_training
from tests.support.data import classification_files, upload
from tests.trainer.conftest import FAST


def _fit(spec, train, context):
    return train_classifier(train.images, train.labels, context=context, options=FAST)


@pytest.fixture
def keep_sigterm():
    """run_training installs its own SIGTERM handler: give pytest's back."""
    handler = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, handler)


def _register(services, name: str, files: dict[str, bytes]) -> list[str]:
    """Upload and register a dataset; its COCO file names."""
    container = services.storage.container(services.settings.datasets_container)
    url = upload(container, f"staging/{name}", files)["annotations.json"]
    services.datasets.register(name, DatasetIn(annotation_kind=AnnotationKind.CLASSIFICATION,
                                               annotation_file_uris=[url]))
    return [image["file_name"] for image in json.loads(files["annotations.json"])["images"]]


def _renamed(files: dict[str, bytes], folder: str) -> dict[str, bytes]:
    """The same dataset with its images under another folder (file names unlike the training set's)."""
    coco = json.loads(files["annotations.json"])
    for image in coco["images"]:
        image["file_name"] = f"{folder}/{image['file_name']}"
    out = {f"{folder}/{name}": data for name, data in files.items() if name != "annotations.json"}
    return {**out, "annotations.json": json.dumps(coco).encode()}


def _train(services, unique_name, test_files: dict[str, bytes] | None) -> tuple[dict[str, bytes], list[str], list]:
    """Run one training job in this process; (the model's blobs by file name, the training set's file
    names, the test set's file names or None)."""
    train_name = unique_name("hold-train")
    train_keys = _register(services, train_name, classification_files(("red", "green"), per_class=3))
    test_name = unique_name("hold-test") if test_files is not None else None
    test_keys = _register(services, test_name, test_files) if test_files is not None else None
    model = unique_name("hold-model")
    record = ModelRecord(name=model, training_dataset=train_name, test_dataset=test_name, budget_hours=1,
                         model_kind=ModelKind.CLASSIFIER, run_id=f"{model}-run", backend=services.backend.name)
    services.models.repo.store.create(record)
    spec = services.models.job_spec(record, services.datasets.get(train_name),
                                    services.datasets.get(test_name) if test_name else None, budget_seconds=600)
    assert run_training(spec, services.storage, _fit) == 0
    assert services.models.get(model).status.value == "succeeded"
    container = services.storage.container(services.settings.models_container)
    blobs = {b.name.removeprefix(f"{model}/"): container.download_blob(b.name).readall()
             for b in container.list_blobs(name_starts_with=f"{model}/") if "/" not in b.name.removeprefix(f"{model}/")}
    return blobs, train_keys, test_keys


def _accuracy(holdout) -> float:
    hits = [int(np.argmax(image.scores)) in image.truth_labels for image in holdout.images]
    return sum(hits) / len(hits)


@pytest.mark.slow
def test_a_training_run_uploads_its_held_out_predictions(services, unique_name, keep_sigterm):
    blobs, train_keys, _ = _train(services, unique_name, None)
    assert HOLDOUT_FILE in blobs
    holdout = holdout_from_json(blobs[HOLDOUT_FILE])
    labels = labels_from_json(blobs[LABELS_FILE])
    report = json.loads(blobs[TRAINING_REPORT_FILE])
    assert holdout.task == "multiclass" and holdout.labels == labels == ["red", "green"]
    # the estimate: out-of-fold predictions of every image (the linear head), or the fine-tuned split
    # pass's held-out images (one of the 3 images of each category)
    if report["method"] == "finetune":
        assert holdout.source == report["holdout_source"] == "split" and len(holdout.images) == 2
    else:
        assert holdout.source == report["holdout_source"] == "crossValidation" and len(holdout.images) == 6
    assert len(holdout.images) == report["holdout_images"]
    metrics = json.loads(blobs[METRICS_FILE])
    assert metrics["measuredOn"] == {"source": holdout.source, "images": len(holdout.images), "isEstimate": True}
    keys = [image.key for image in holdout.images]
    assert len(set(keys)) == len(keys) and set(keys) <= set(train_keys)
    for image in holdout.images:
        assert len(image.scores) == len(labels) and abs(sum(image.scores) - 1) < 1e-4
        assert (image.width, image.height) == (96, 72) and len(image.truth_labels) == 1
        assert image.truth_labels == [labels.index(image.key.split("/")[1].split("_")[0])]
        assert image.truth_boxes is None and image.detections is None
    # the file holds the very predictions metrics.json measured
    assert json.loads(blobs[METRICS_FILE])["accuracyTop1"] == pytest.approx(_accuracy(holdout))
    raw = json.loads(blobs[HOLDOUT_FILE])
    assert set(raw["images"][0]) == {"key", "width", "height", "truth_labels", "scores"}


@pytest.mark.slow
def test_a_run_with_a_test_set_writes_the_test_images_predictions(services, unique_name, keep_sigterm):
    test_files = _renamed(classification_files(("red", "green"), per_class=2), "test")
    blobs, train_keys, test_keys = _train(services, unique_name, test_files)
    holdout = holdout_from_json(blobs[HOLDOUT_FILE])
    labels = labels_from_json(blobs[LABELS_FILE])
    assert holdout.source == "test" and holdout.labels == labels and holdout.task == "multiclass"
    assert sorted(image.key for image in holdout.images) == sorted(test_keys)  # exactly the test images
    assert json.loads(blobs[METRICS_FILE])["measuredOn"] == {"source": "test", "images": len(test_keys),
                                                            "isEstimate": False}
    assert not set(test_keys) & set(train_keys)
    for image in holdout.images:
        assert len(image.scores) == len(labels)
        # the test set's categories come in the model's label order
        assert image.truth_labels == [labels.index(image.key.split("/")[2].split("_")[0])]
    assert json.loads(blobs[METRICS_FILE])["accuracyTop1"] == pytest.approx(_accuracy(holdout))


def test_the_format_holds_the_fields_of_its_task():
    image = HoldoutImage(key="images/a.jpg", width=640, height=480, truth_labels=[1], scores=[0.2, 0.8])
    holdout = Holdout(task="multiclass", labels=["cat", "dog"], source="split", images=[image])
    assert json.loads(holdout.to_json())["images"] == [
        {"key": "images/a.jpg", "width": 640, "height": 480, "truth_labels": [1], "scores": [0.2, 0.8]}]
    assert holdout_from_json(holdout.to_json()) == holdout
    for wrong in ({"scores": [1.0]}, {"truth_labels": [2]}, {"scores": None}):
        with pytest.raises(ValueError, match="images\\[0\\]"):
            Holdout(task="multiclass", labels=["cat", "dog"], source="split",
                    images=[image.model_copy(update=wrong)])
    with pytest.raises(ValueError, match="detection fields"):
        Holdout(task="detection", labels=["cat", "dog"], source="test", images=[image])
    boxes = HoldoutImage(key="b.png", width=200, height=100, truth_boxes=[(0, 0.1, 0.2, 0.5, 0.5)],
                         detections=[(1, 0.9, *relative_box(-10, 20, 120, 130, 200, 100))])
    assert boxes.detections == [(1, 0.9, 0.0, 0.2, 0.6, 0.8)]  # clipped to the image
    assert holdout_from_json(Holdout(task="detection", labels=["cat", "dog"], source="test",
                                     images=[boxes]).to_json()).images == [boxes]
