"""Models API refusals and shapes that need no trainer run (docs/wire-contract.md#models, #enums, #client-quirks)."""
from __future__ import annotations

import pytest

from loupe.datasets.requests import DatasetIn
from tests.support.data import classification_files, detection_files, upload


@pytest.fixture
def dataset(services, unique_name):
    container = services.storage.container(services.settings.datasets_container)

    def make(files, kind="imageClassification") -> str:
        name = unique_name("mds")
        url = upload(container, f"staging/{name}", files)["annotations.json"]
        services.datasets.register(name, DatasetIn(annotation_kind=kind, annotation_file_uris=[url]))
        return name

    return make


def _body(dataset: str, hours=1, kind=None, test=None) -> dict:
    params = {"TrainingDatasetName": dataset, "TimeBudgetInHours": hours}
    if kind:
        params["ModelKind"] = kind
    body = {"TrainingParameters": params}
    if test:
        body["EvaluationParameters"] = {"TestDatasetName": test}
    return body


@pytest.mark.parametrize("hours", [0, -1, 1345, 1.5, "1", True])
def test_budget_must_be_whole_hours_in_range(http, dataset, unique_name, hours):
    name = unique_name("m")
    response = http("PUT", f"/computervision/models/{name}", json=_body(dataset(classification_files()), hours))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["target"] == "trainingParameters.timeBudgetInHours"
    assert http("GET", f"/computervision/models/{name}").status_code == 404  # nothing written


def test_unknown_dataset_and_kinds_are_clear_400s(http, dataset, unique_name):
    cases = [
        (_body("no-such-dataset"), "DatasetNotFound", "trainingParameters.trainingDatasetName"),
        (_body(dataset(classification_files()), kind="Product-Recognizer"), "ModelKindNotSupported",
         "trainingParameters.modelKind"),
        (_body(dataset(classification_files()), kind="Generic-Detector"), "IncorrectModelKind",
         "trainingParameters.modelKind"),
        (_body(dataset(detection_files(), "imageObjectDetection"), kind="Generic-Classifier"), "IncorrectModelKind",
         "trainingParameters.modelKind"),
        (_body(dataset(classification_files()), kind="Generic-Segmenter"), "InvalidRequest",
         "trainingParameters.modelKind"),
        (_body(dataset(classification_files()), test="no-such-test-set"), "DatasetNotFound",
         "evaluationParameters.testDatasetName"),
        (_body(dataset(classification_files()), test=dataset(detection_files(), "imageObjectDetection")),
         "IncorrectModelKind", "evaluationParameters.testDatasetName"),
        ({"trainingParameters": {"timeBudgetInHours": 1}}, "InvalidRequest",
         "trainingParameters.trainingDatasetName"),
        ({}, "InvalidRequest", "trainingParameters"),
    ]
    for body, code, target in cases:
        name = unique_name("m")
        response = http("PUT", f"/computervision/models/{name}", json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == code, response.text
        assert response.json()["error"]["target"] == target, response.text
        assert http("GET", f"/computervision/models/{name}").status_code == 404


def test_dataset_not_usable_for_training_is_refused(http, services, unique_name):
    container = services.storage.container(services.settings.datasets_container)
    name = unique_name("oneimg")
    url = upload(container, f"staging/{name}", classification_files(per_class=1))["annotations.json"]
    registered = services.datasets.register(name, DatasetIn(annotation_kind="imageClassification",
                                                            annotation_file_uris=[url]))
    assert registered.validation.wire()["status"] == "evaluationOnly"
    response = http("PUT", f"/computervision/models/{unique_name('m')}", json=_body(name))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "DatasetNotUsable"


def test_unknown_models_answer_404_everywhere(http):
    for method, path in (("GET", "/computervision/models/nope"), ("DELETE", "/computervision/models/nope"),
                         ("POST", "/computervision/models/nope:cancel"),
                         ("GET", "/computervision/models/nope/evaluations"),
                         ("GET", "/computervision/models/nope/evaluations/e1")):
        response = http(method, path)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "NotFound"


def test_model_list_is_paged(http):
    response = http("GET", "/computervision/models?top=1")
    assert response.status_code == 200
    assert "value" in response.json()
    assert http("GET", "/computervision/models?top=0").status_code == 400


def test_a_budget_below_the_documented_minimum_fails_the_model_at_once(services, unique_name):
    """160 detection images need 1.07 h by the documented formula: the model is created failed."""
    from loupe.budget import budget_problem
    from loupe.enums import ModelKind
    from loupe.models.requests import ModelIn
    from loupe.runs.record import RunStatus

    message = budget_problem(ModelKind.DETECTOR, 200, 1)
    assert message and "minimum is 1.333 h" in message and "suggested budget: 3 h" in message
    assert budget_problem(ModelKind.CLASSIFIER, 200, 1) is None
    container = services.storage.container(services.settings.datasets_container)
    name = unique_name("big")
    url = upload(container, f"staging/{name}", detection_files(per_class=80))["annotations.json"]
    services.datasets.register(name, DatasetIn(annotation_kind="imageObjectDetection", annotation_file_uris=[url]))
    model = services.models.create(unique_name("m"), ModelIn.model_validate(
        {"trainingParameters": {"trainingDatasetName": name, "timeBudgetInHours": 1}}))
    assert model.status is RunStatus.FAILED
    assert model.error["code"] == "notEnoughBudget"
    assert "160 training images" in model.error["message"] and model.job_id is None
