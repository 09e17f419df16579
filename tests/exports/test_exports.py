"""Exports end to end (docs/exports.md, docs/customvision.md#exports): a classifier trained through
the unchanged Custom Vision SDK is exported by real export jobs (the local backend's trainer
subprocesses), fetched through its pre-signed downloadUri with no key, and run the way
Azure-Samples/customvision-export-samples does; its top tag agrees with Loupe's own prediction."""
from __future__ import annotations

import io
import time
import uuid
from pathlib import Path

import pytest
import requests
from azure.cognitiveservices.vision.customvision.training.models import CustomVisionErrorException
from PIL import Image

from loupe.api.middleware import SUPPORTED_API_VERSIONS
from loupe.exports.platforms import PLATFORMS
from loupe.sample_data import classification
from tests.conftest import TEST_API_KEY
from tests.customvision.conftest import upload_sample, wait_trained
from tests.packages.consumer import OnnxConsumer, OpenVinoConsumer, unzip

KEY = {"Ocp-Apim-Subscription-Key": TEST_API_KEY}
VERSION = {"api-version": SUPPORTED_API_VERSIONS[-1]}


def cv_error(call, *args, **kwargs) -> str:
    with pytest.raises(CustomVisionErrorException) as excinfo:
        call(*args, **kwargs)
    return excinfo.value.error.code


@pytest.fixture(scope="module")
def trained(trainer):
    """One multiclass classifier for the module; an export of it while training is refused."""
    project = trainer.create_project(f"cv-export-{uuid.uuid4().hex[:6]}", classification_type="Multiclass")
    upload_sample(trainer, project.id, classification("train", per_class=3))
    iteration = trainer.train_project(project.id)
    refused = cv_error(trainer.export_iteration, project.id, iteration.id, "ONNX")
    assert refused == "BadRequestIterationIsNotTrained"
    iteration = wait_trained(trainer, project.id, iteration.id)
    assert iteration.status == "Completed", iteration.training_error_details
    return project, iteration


def test_the_core_builds_the_platforms_the_trainer_packages():
    from trainer.packages import PLATFORMS as TRAINER_PLATFORMS

    assert PLATFORMS == TRAINER_PLATFORMS


def _wait_exports(trainer, project_id: str, iteration_id: str, count: int, timeout: float = 300.0) -> list:
    deadline = time.monotonic() + timeout
    while True:
        exports = trainer.get_exports(project_id, iteration_id)
        if len(exports) == count and all(e.status != "Exporting" for e in exports):
            return exports
        assert time.monotonic() < deadline, [(e.platform, e.status) for e in exports]
        time.sleep(1.0)


def _agrees_with_loupe(trainer, project_id: str, iteration_id: str, consumer, labels: list[str]) -> None:
    """Same top tag as Loupe's quick test, on test images the model never saw."""
    test = classification("test", seed=3, per_class=1)
    for data in test.images.values():
        image = Image.open(io.BytesIO(data)).convert("RGB")
        scores = next(iter(consumer.predict(image, Image.Resampling.BILINEAR).values()))[0]
        loupe = trainer.quick_test_image(project_id, data, iteration_id=iteration_id, store=False)
        best = max(loupe.predictions, key=lambda p: p.probability)
        assert labels[int(scores.argmax())] == best.tag_name


def _download(uri: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    response = requests.get(uri, timeout=30)  # no key: the link is pre-signed
    assert response.status_code == 200, response.text[:300]
    (folder / "package.zip").write_bytes(response.content)
    return unzip(folder / "package.zip", folder / "unzipped")


def test_custom_vision_exports_run_like_the_samples(trainer, trained, tmp_path):
    project, iteration = trained
    assert trainer.get_exports(project.id, iteration.id) == []
    onnx = trainer.export_iteration(project.id, iteration.id, "onnx")
    assert (onnx.platform, onnx.status, onnx.flavor, onnx.download_uri) == ("ONNX", "Exporting", None, None)
    # the same export again while it runs: the documented error clients catch
    again = cv_error(trainer.export_iteration, project.id, iteration.id, "ONNX")
    assert again == "BadRequestExportAlreadyInProgress"
    openvino = trainer.export_iteration(project.id, iteration.id, "OPENVINO")
    assert openvino.platform == "OpenVino"
    exports = {e.platform: e for e in _wait_exports(trainer, project.id, iteration.id, 2)}
    assert {e.status for e in exports.values()} == {"Done"}, exports
    for platform, consumer_type in (("ONNX", OnnxConsumer), ("OpenVino", OpenVinoConsumer)):
        folder = _download(exports[platform].download_uri, tmp_path / platform)
        labels = (folder / "labels.txt").read_text().splitlines()
        _agrees_with_loupe(trainer, project.id, iteration.id, consumer_type(folder), labels)
    # once Done, asking again answers the existing export with a fresh link
    again = trainer.export_iteration(project.id, iteration.id, "ONNX")
    assert again.status == "Done" and again.download_uri


def test_custom_vision_refuses_what_it_cannot_export(trainer, trained):
    project, iteration = trained
    for platform, flavor in (("VAIDK", None), ("TensorFlow", "TensorFlowJs"), ("Foo", None),
                             ("ONNX", "ONNX11"), ("OpenVino", "ONNXFloat16"), ("DockerFile", "Windows")):
        assert cv_error(trainer.export_iteration, project.id, iteration.id, platform, flavor=flavor) == \
            "BadRequestNotSupported", (platform, flavor)
    unknown = "00000000-0000-4000-8000-000000000000"
    assert cv_error(trainer.export_iteration, project.id, unknown, "ONNX") == "NotFoundIteration"
    assert cv_error(trainer.get_exports, project.id, unknown) == "NotFoundIteration"


def test_image_analysis_exports_the_same_model(api_server, trainer, trained, tmp_path):
    project, iteration = trained
    base = f"{api_server.url}/computervision/models/customvision-{iteration.id}/exports"
    created = requests.put(f"{base}/onnx", params=VERSION, headers=KEY, json={"flavor": "onnxfloat16"},
                           timeout=30)
    assert created.status_code == 202, created.text
    assert (created.json()["platform"], created.json()["flavor"]) == ("ONNX", "onnxfloat16")  # echoed as sent
    repeated = requests.put(f"{base}/ONNX", params=VERSION, headers=KEY, json={"flavor": "ONNXFloat16"},
                            timeout=30)
    assert repeated.status_code in (200, 409), repeated.text  # 409 while running, 200 once succeeded
    deadline = time.monotonic() + 300
    while True:
        found = requests.get(f"{base}/ONNX", params={**VERSION, "flavor": "ONNXFloat16"}, headers=KEY,
                             timeout=30)
        assert found.status_code == 200, found.text
        if found.json()["status"] in ("succeeded", "failed"):
            break
        assert time.monotonic() < deadline
        time.sleep(1.0)
    assert found.json()["status"] == "succeeded", found.json()
    folder = _download(found.json()["downloadUri"], tmp_path)
    consumer = OnnxConsumer(folder)
    assert consumer.input_type.__name__ == "float16"
    labels = (folder / "labels.txt").read_text().splitlines()
    _agrees_with_loupe(trainer, project.id, iteration.id, consumer, labels)
    listed = requests.get(base, params=VERSION, headers=KEY, timeout=30).json()["value"]
    assert {(e["platform"], e["flavor"]) for e in listed} >= {("ONNX", "onnxfloat16")}


def test_image_analysis_bad_input_is_a_documented_4xx(api_server, trained):
    _, iteration = trained
    base = f"{api_server.url}/computervision/models"
    cases = [
        ("put", f"{base}/customvision-{iteration.id}/exports/VAIDK", None, 400),
        ("put", f"{base}/customvision-{iteration.id}/exports/ONNX", {"flavor": "ONNX11"}, 400),
        ("put", f"{base}/customvision-{iteration.id}/exports/OpenVino", {"flavor": "ONNXFloat16"}, 400),
        ("get", f"{base}/customvision-{iteration.id}/exports/CoreML", None, 404),  # never asked for
        ("get", f"{base}/customvision-{iteration.id}/exports/ONNX?flavor=ONNX11", None, 400),
        ("put", f"{base}/no-such-model/exports/ONNX", None, 404),
        ("get", f"{base}/no-such-model/exports", None, 404),
        ("get", f"{base}/no-such-model/exports/OpenVino", None, 404),
        ("get", f"{base}/customvision-{iteration.id}/exports/VAIDK", None, 400),
        ("put", f"{base}/customvision-{iteration.id}/exports/ONNX", ["not", "an", "object"], 400),
    ]
    for method, url, body, status in cases:
        response = requests.request(method, url, params=VERSION, headers=KEY, json=body, timeout=30)
        assert response.status_code == status, (method, url, body, response.text)
        assert response.json()["error"]["code"]
