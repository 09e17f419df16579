"""End-to-end fixtures: the real local backend running real trainer subprocesses, the
reconciler ticking, datasets registered from generated sample images."""
from __future__ import annotations

import time

import pytest
from cognitive_service_vision_model_customization_python_samples import (
    DatasetClient,
    EvaluationClient,
    PredictionClient,
    ResourceType,
    TrainingClient,
)

from loupe.datasets.requests import DatasetIn
from loupe.local.periodic import Periodic
from loupe.sample_data import classification
from tests.conftest import TEST_API_KEY
from tests.support.data import upload

RECONCILE_SECONDS = 1.0


@pytest.fixture(scope="session")
def reconciler(services):
    loop = Periodic("test-reconciler", RECONCILE_SECONDS, services.reconciler.run_once).start()
    yield loop
    loop.stop()
    services.backend.shutdown()


@pytest.fixture(scope="session")
def clients(api_server, reconciler):
    args = (ResourceType.MULTI_SERVICE_RESOURCE, None, api_server.url, TEST_API_KEY)
    return {"datasets": DatasetClient(*args), "training": TrainingClient(*args),
            "evaluation": EvaluationClient(*args), "prediction": PredictionClient(*args)}


@pytest.fixture(scope="session")
def register(services):
    """Upload a SampleDataset into a fresh folder and register it through the service."""
    container = services.storage.container(services.settings.datasets_container)
    counter = iter(range(10_000))

    def make(sample, name: str | None = None) -> str:
        name = name or f"{sample.name}-{next(counter)}"
        url = upload(container, f"staging/{name}", sample.files())["annotations.json"]
        services.datasets.register(name, DatasetIn(annotation_kind=sample.kind, annotation_file_uris=[url]))
        return name

    return make


@pytest.fixture(scope="session")
def small_classification(register):
    """3 images per class for training, 3 per class for testing: trains in seconds."""
    return register(classification("train", per_class=3)), register(classification("test", per_class=3))


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
