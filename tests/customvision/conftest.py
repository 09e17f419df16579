"""The Custom Vision SDK 3.1.1 (training and prediction clients), unchanged, against the real server."""
from __future__ import annotations

import io
import uuid
from dataclasses import dataclass

import pytest
from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
from msrest.authentication import ApiKeyCredentials
from PIL import Image

from loupe.sample_data import detection
from tests.conftest import TEST_API_KEY

# "General (compact)", ObjectDetection: Custom Vision's exportable detection domain
COMPACT_DETECTION_DOMAIN = "a27d5ca5-bb19-49d8-a70a-fec086c47f5b"


@dataclass(frozen=True)
class TrainedProject:
    project_id: str
    iteration_id: str
    tags: dict[str, str]  # name -> id


def training_client(url: str) -> CustomVisionTrainingClient:
    # the quickstart's spelling of the header (docs/customvision.md#wire)
    return CustomVisionTrainingClient(url, ApiKeyCredentials(in_headers={"Training-key": TEST_API_KEY}))


@pytest.fixture(scope="session")
def trainer(api_server) -> CustomVisionTrainingClient:
    return training_client(api_server.url)


@pytest.fixture(scope="session")
def predictor(api_server) -> CustomVisionPredictionClient:
    return CustomVisionPredictionClient(api_server.url, ApiKeyCredentials(in_headers={"Prediction-key": TEST_API_KEY}))


def jpeg(color: tuple[int, int, int], size: tuple[int, int] = (320, 240), seed: int = 0) -> bytes:
    """A real JPEG of one colour with a little texture (``seed`` makes the bytes differ)."""
    image = Image.new("RGB", size, color)
    pixels = image.load()
    for i in range(40):
        x, y = (seed * 7919 + i * 104729) % size[0], (seed * 15485863 + i * 32452843) % size[1]
        pixels[x, y] = (255 - color[0], 255 - color[1], 255 - color[2])
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


def upload_sample(trainer, project_id: str, sample) -> dict[str, str]:
    """A SampleDataset's images and labels into a project through create_images_from_files: tags by
    category name (created here), regions for detection. Returns tag name -> id."""
    from azure.cognitiveservices.vision.customvision.training.models import (
        ImageFileCreateBatch,
        ImageFileCreateEntry,
        Region,
    )

    coco = sample.coco
    tags = {c["name"]: trainer.create_tag(project_id, c["name"]).id for c in coco["categories"]}
    by_category = {c["id"]: tags[c["name"]] for c in coco["categories"]}
    entries = []
    for image in coco["images"]:
        notes = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
        if "bbox" in (notes[0] if notes else {}):
            regions = [Region(tag_id=by_category[a["category_id"]], left=a["bbox"][0], top=a["bbox"][1],
                              width=a["bbox"][2], height=a["bbox"][3]) for a in notes]
            entry = ImageFileCreateEntry(name=image["file_name"], contents=sample.images[image["file_name"]],
                                         regions=regions)
        else:
            entry = ImageFileCreateEntry(name=image["file_name"], contents=sample.images[image["file_name"]],
                                         tag_ids=sorted({by_category[a["category_id"]] for a in notes}))
        entries.append(entry)
    for start in range(0, len(entries), 64):
        summary = trainer.create_images_from_files(project_id, ImageFileCreateBatch(images=entries[start:start + 64]))
        assert summary.is_batch_successful, [i.status for i in summary.images]
    return tags


def wait_trained(trainer, project_id: str, iteration_id: str, timeout: float = 600.0):
    """The quickstart's loop: poll until the iteration is no longer Training."""
    import time

    deadline = time.monotonic() + timeout
    iteration = trainer.get_iteration(project_id, iteration_id)
    while iteration.status == "Training":
        assert time.monotonic() < deadline, "training did not finish in time"
        time.sleep(1.0)
        iteration = trainer.get_iteration(project_id, iteration_id)
    return iteration


def train_compact_detector(api_server) -> TrainedProject:
    """A detector of the sample scenes in the exportable (compact) detection domain, trained through
    the SDK; tests/conftest.py's session fixture ``compact_detector``."""
    trainer = training_client(api_server.url)
    project = trainer.create_project(f"cv-od-{uuid.uuid4().hex[:6]}", domain_id=COMPACT_DETECTION_DOMAIN)
    tags = upload_sample(trainer, project.id, detection("train"))
    iteration = wait_trained(trainer, project.id, trainer.train_project(project.id).id, timeout=1800)
    assert iteration.status == "Completed", iteration.training_error_details
    return TrainedProject(project.id, iteration.id, tags)
