"""The official samples package's Custom Vision -> COCO export (``export_data``) against Loupe:
it reads a project through the training API, copies its images into blob storage and writes a
COCO file there, which Loupe then registers as an Image Analysis dataset.

The one thing adapted is where the blobs go: ``export_data`` builds
``https://<account>.blob.core.windows.net`` from an account name, so the test points its
``ContainerClient`` at Azurite. Everything it sends to Custom Vision is the sample's own.
"""
from __future__ import annotations

import json

import pytest
import requests
from azure.cognitiveservices.vision.customvision.training.models import (
    ImageFileCreateBatch,
    ImageFileCreateEntry,
    Region,
)
from azure.storage.blob import ContainerClient
from cognitive_service_vision_model_customization_python_samples.data import (
    export_cvs_data_to_blob_storage as sample,
)

from tests.conftest import TEST_API_KEY
from tests.customvision.conftest import jpeg

DETECTION = "da2e3a8a-40a5-4171-82f4-58522f70fbc1"
API = "api-version=2023-04-01-preview"


@pytest.fixture
def blobs_on_azurite(monkeypatch, settings):
    """The sample's ContainerClient(account_url, container, credential), on Azurite."""
    def container_client(account_url: str, container_name: str, credential=None) -> ContainerClient:
        return ContainerClient.from_connection_string(settings.storage_connection_string, container_name)

    monkeypatch.setattr(sample, "ContainerClient", container_client)


def _detection_project(trainer, name: str):
    project = trainer.create_project(name, domain_id=DETECTION)
    can, cup = trainer.create_tag(project.id, "can"), trainer.create_tag(project.id, "cup")
    batch = ImageFileCreateBatch(images=[
        ImageFileCreateEntry(name=f"{i}.jpg", contents=jpeg((30 * i, 140, 90), seed=i), regions=[
            Region(tag_id=(can if i % 2 else cup).id, left=0.1, top=0.15, width=0.4, height=0.5),
            Region(tag_id=can.id, left=0.55, top=0.2, width=0.3, height=0.3)])
        for i in range(4)])
    assert trainer.create_images_from_files(project.id, batch).is_batch_successful
    trainer.create_images_from_data(project.id, jpeg((1, 1, 1), seed=99))  # untagged: an image without boxes
    return project


def _export(project, api_server, settings, tmp_path, monkeypatch) -> str:
    """``export_data`` with 2 processes; the folder it wrote (``<project name>_<project id>``)."""
    monkeypatch.chdir(tmp_path)  # export_data writes ./train.json
    sample.export_data("devstoreaccount1", "unused", settings.datasets_container, api_server.url, TEST_API_KEY,
                       project.id, 2)
    return f"{project.name}_{project.id}"


def _register(api_server, name: str, kind: str, url: str) -> dict:
    created = requests.put(f"{api_server.url}/computervision/datasets/{name}?{API}", timeout=120,
                           json={"annotationKind": kind, "annotationFileUris": [url]},
                           headers={"Ocp-Apim-Subscription-Key": TEST_API_KEY})
    assert created.status_code == 201, created.text
    return created.json()["validation"]


def test_export_data_writes_a_coco_file_loupe_registers(trainer, api_server, services, settings, blobs_on_azurite,
                                                        unique_name, tmp_path, monkeypatch):
    project = _detection_project(trainer, unique_name("coco").replace("-", "_"))
    folder = _export(project, api_server, settings, tmp_path, monkeypatch)
    container = services.storage.container(settings.datasets_container)
    coco = json.loads(container.download_blob(f"{folder}/train.json").readall())
    assert len(coco["images"]) == 5 and {c["name"] for c in coco["categories"]} == {"can", "cup"}
    assert len(coco["annotations"]) == 8 and all(len(a["bbox"]) == 4 for a in coco["annotations"])
    originals = {image.id: requests.get(image.original_image_uri, timeout=30).content
                 for image in trainer.get_images(project.id)}
    for image in coco["images"]:
        copied = container.download_blob(image["file_name"]).readall()
        assert copied == originals[image["file_name"].rsplit("/", 1)[1]]

    validation = _register(api_server, unique_name("cvexport"), "imageObjectDetection",
                           container.get_blob_client(f"{folder}/train.json").url)
    assert validation["status"] == "valid", validation
    assert validation["imageCount"] == 5
    assert {c["name"]: c["imageCount"] for c in validation["categories"]} == {"can": 4, "cup": 2}


def test_export_data_of_a_classification_project(trainer, api_server, services, settings, blobs_on_azurite,
                                                 unique_name, tmp_path, monkeypatch):
    project = trainer.create_project(unique_name("cls").replace("-", "_"))
    tags = [trainer.create_tag(project.id, name) for name in ("apple", "pear")]
    for i in range(4):
        trainer.create_images_from_data(project.id, jpeg((200, 40 * i, 20), seed=20 + i), tag_ids=[tags[i % 2].id])
    folder = _export(project, api_server, settings, tmp_path, monkeypatch)
    container = services.storage.container(settings.datasets_container)
    coco = json.loads(container.download_blob(f"{folder}/train.json").readall())
    assert len(coco["annotations"]) == 4 and not any("bbox" in a for a in coco["annotations"])
    validation = _register(api_server, unique_name("cvexport"), "imageClassification",
                           container.get_blob_client(f"{folder}/train.json").url)
    assert validation["status"] == "valid", validation
    assert {c["name"]: c["imageCount"] for c in validation["categories"]} == {"apple": 2, "pear": 2}
