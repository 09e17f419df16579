"""The Custom Vision SDK clients of tests/customvision, and the models export tests train through
the Custom Vision SDK: one classifier per module that asks, and the session's compact detector
(each module's exports start from none)."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import pytest
import requests
from azure.cognitiveservices.vision.customvision.training.models import CustomVisionErrorException

from loupe.api.middleware import SUPPORTED_API_VERSIONS
from loupe.sample_data import classification
from tests.conftest import TEST_API_KEY
from tests.customvision.conftest import (  # noqa: F401  (fixtures)
    predictor,
    trainer,
    upload_sample,
    wait_trained,
)

KEY = {"Ocp-Apim-Subscription-Key": TEST_API_KEY}
VERSION = {"api-version": SUPPORTED_API_VERSIONS[-1]}


@dataclass(frozen=True)
class Trained:
    project_id: str
    iteration_id: str
    kind: str  # "classifier" | "detector"

    @property
    def model(self) -> str:
        """The iteration's Loupe model: /computervision sees it under this name."""
        return f"customvision-{self.iteration_id}"


def cv_error(call, *args, **kwargs) -> str:
    with pytest.raises(CustomVisionErrorException) as excinfo:
        call(*args, **kwargs)
    return excinfo.value.error.code


def _refused_while_training(api_server, trainer, project_id: str, iteration_id: str) -> None:  # noqa: F811
    """Exporting an iteration (a model) still training: both APIs' documented 400."""
    assert cv_error(trainer.export_iteration, project_id, iteration_id, "ONNX") == "BadRequestIterationIsNotTrained"
    answer = requests.put(f"{api_server.url}/computervision/models/customvision-{iteration_id}/exports/ONNX",
                          params=VERSION, headers=KEY, timeout=30)
    if trainer.get_iteration(project_id, iteration_id).status == "Training":  # not finished meanwhile
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "ModelNotTrained", answer.text


def _train(api_server, trainer, project, sample, kind: str) -> Trained:  # noqa: F811
    upload_sample(trainer, project.id, sample)
    iteration = trainer.train_project(project.id)
    _refused_while_training(api_server, trainer, project.id, iteration.id)
    iteration = wait_trained(trainer, project.id, iteration.id, timeout=1800)
    assert iteration.status == "Completed", iteration.training_error_details
    return Trained(project.id, iteration.id, kind)


@pytest.fixture(scope="module")
def cv_classifier(api_server, trainer) -> Trained:  # noqa: F811
    """A multiclass classifier trained through the Custom Vision SDK."""
    project = trainer.create_project(f"cv-export-{uuid.uuid4().hex[:6]}", classification_type="Multiclass")
    return _train(api_server, trainer, project, classification("train", per_class=3), "classifier")


@pytest.fixture(scope="module")
def cv_detector(compact_detector) -> Trained:
    """A detector trained through the Custom Vision SDK in the compact (exportable) detection domain:
    the session's, shared with the prediction tests (tests/customvision/conftest.py)."""
    return Trained(compact_detector.project_id, compact_detector.iteration_id, "detector")


def wait_exports_ia(api_server, model: str, count: int, timeout: float = 1800.0) -> list[dict]:
    """Poll /computervision's list until ``count`` exports of ``model`` are all final."""
    deadline = time.monotonic() + timeout
    while True:
        answer = requests.get(f"{api_server.url}/computervision/models/{model}/exports", params=VERSION,
                              headers=KEY, timeout=30)
        assert answer.status_code == 200, answer.text
        found = answer.json()["value"]
        if len(found) >= count and all(e["status"] in ("succeeded", "failed") for e in found):
            return found
        assert time.monotonic() < deadline, [(e["platform"], e["flavor"], e["status"]) for e in found]
        time.sleep(1.0)
