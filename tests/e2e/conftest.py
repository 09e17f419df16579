"""End-to-end fixtures: the real local backend running real trainer subprocesses, the
reconciler ticking, datasets registered from generated sample images."""
from __future__ import annotations

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


@pytest.fixture(scope="package")
def reconciler(services):
    """Ticks only while tests/e2e runs: left running for the session, it would also sweep the
    runs that later modules create in the shared storage for their own scripted reconcilers, and
    fail them against the real backend first (a race that once failed tests/exports)."""
    loop = Periodic("test-reconciler", RECONCILE_SECONDS, services.reconciler.run_once).start()
    yield loop
    loop.stop()


@pytest.fixture(scope="package")
def clients(api_server, reconciler):
    args = (ResourceType.MULTI_SERVICE_RESOURCE, None, api_server.url, TEST_API_KEY)
    return {"datasets": DatasetClient(*args), "training": TrainingClient(*args),
            "evaluation": EvaluationClient(*args), "prediction": PredictionClient(*args)}


@pytest.fixture(scope="package")
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


@pytest.fixture(scope="package")
def small_classification(register):
    """3 images per class for training, 3 per class for testing: trains in seconds."""
    return register(classification("train", per_class=3)), register(classification("test", per_class=3))


@pytest.fixture(scope="package")
def trained_classifier(clients, small_classification):
    """A classifier trained once for the prediction tests: (model name, test SampleDataset)."""
    from cognitive_service_vision_model_customization_python_samples import (
        EvaluationParameters,
        Model,
        ModelKind,
        ModelStatus,
        TrainingParameters,
    )

    train_set, test_set = small_classification
    training = clients["training"]
    training.train_model(Model("e2e-predict-classifier", TrainingParameters(train_set, 1, ModelKind.GENERIC_IC),
                               EvaluationParameters(test_set)))
    final = training.wait_for_training_completion("e2e-predict-classifier", check_wait_in_secs=1)
    assert final.status is ModelStatus.SUCCEEDED, final.error
    return "e2e-predict-classifier", classification("test", per_class=3)


@pytest.fixture(scope="package")
def url_api_server(make_settings, services):
    """A second API over the same storage with the local-development URL settings (http, loopback)."""
    from loupe.api.app import create_app
    from loupe.local.azurite import free_port
    from loupe.local.server import ServerThread
    from loupe.services import Services

    relaxed = Services(make_settings(allow_http_image_urls=True, allow_loopback_image_urls=True)).ready()
    server = ServerThread(create_app(relaxed), port=free_port()).start()
    yield server
    server.stop()
    relaxed.close()


@pytest.fixture(scope="package")
def trained_detector(clients, register):
    """A detector trained once on the sample detection set: (model name, test SampleDataset, test name)."""
    from cognitive_service_vision_model_customization_python_samples import (
        EvaluationParameters,
        Model,
        ModelKind,
        ModelStatus,
        TrainingParameters,
    )

    from loupe.sample_data import detection

    test = detection("test")
    train_set, test_set = register(detection("train")), register(test)
    training = clients["training"]
    training.train_model(Model("e2e-detector", TrainingParameters(train_set, 1, ModelKind.GENERIC_OD),
                               EvaluationParameters(test_set)))
    final = training.wait_for_training_completion("e2e-detector", check_wait_in_secs=1)
    assert final.status is ModelStatus.SUCCEEDED, final.error
    return "e2e-detector", test, test_set, final
