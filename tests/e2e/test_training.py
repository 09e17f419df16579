"""Training end to end over HTTP with the official TrainingClient (samples 0.0.6), the real
local backend and real trainer subprocesses (issue #3)."""
from __future__ import annotations

import json
import os
import signal
import tempfile
from pathlib import Path

import pytest
import requests
from cognitive_service_vision_model_customization_python_samples import (
    Evaluation,
    EvaluationParameters,
    EvaluationStatus,
    Model,
    ModelKind,
    ModelStatus,
    TrainingParameters,
)

from loupe.artifacts import LABELS_FILE, METRICS_FILE, MODEL_FILE, PREPROCESSING_FILE
from loupe.sample_data import classification
from tests.conftest import TEST_API_KEY
from tests.e2e.conftest import RECONCILE_SECONDS
from tests.support.processes import alive, wait_for

TRAINING_TIMEOUT = 900


def _raw(api_server, name: str) -> dict:
    return requests.get(f"{api_server.url}/computervision/models/{name}?api-version=2023-04-01-preview",
                        headers={"Ocp-Apim-Subscription-Key": TEST_API_KEY}, timeout=30).json()


def _run_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("loupe-run-*")}


def test_train_query_evaluate_and_delete_with_the_official_client(clients, services, small_classification,
                                                                  api_server):
    training = clients["training"]
    train_set, test_set = small_classification
    dirs_before = _run_dirs()
    model = Model("e2e-classifier", TrainingParameters(train_set, 1, ModelKind.GENERIC_IC),
                  EvaluationParameters(test_set))
    created = training.train_model(model)
    assert created.status is ModelStatus.NOT_STARTED
    assert created.training_params.model_kind is ModelKind.GENERIC_IC
    assert training.query_model("e2e-classifier").status in (ModelStatus.NOT_STARTED, ModelStatus.TRAINING)

    # progress is visible while it trains, beyond the wire contract
    progress = wait_for(lambda: _raw(api_server, "e2e-classifier").get("progress", {}).get("phase")
                        not in (None, "starting") and _raw(api_server, "e2e-classifier")["progress"],
                        TRAINING_TIMEOUT, "training progress")
    assert 0.0 <= progress["percent"] <= 100.0
    with pytest.raises(requests.HTTPError) as busy:  # only terminal models can be deleted
        training.delete_model("e2e-classifier")
    assert busy.value.response.status_code == 400

    final = training.wait_for_training_completion("e2e-classifier", check_wait_in_secs=1)
    assert final.status is ModelStatus.SUCCEEDED, final.error
    performance = final.model_performance
    for key in ("accuracyTop1", "accuracyTop5", "averagePrecision", "calibrationECE", "tagPerformance"):
        assert key in performance
    assert set(performance["tagPerformance"]) == {"star", "heart", "ring", "arrow"}
    assert performance["accuracyTop1"] > 0.5  # 4 classes: chance is 0.25
    assert final.training_cost_in_minutes >= 1
    assert "progress" not in _raw(api_server, "e2e-classifier")

    container = services.storage.container(services.settings.models_container)
    names = {b.name for b in container.list_blobs(name_starts_with="e2e-classifier/")}
    for artifact in (MODEL_FILE, LABELS_FILE, PREPROCESSING_FILE, METRICS_FILE):
        assert f"e2e-classifier/{artifact}" in names
    # the local backend copies the trainer's log next to the model once the process has exited
    wait_for(lambda: any(b.name.startswith("e2e-classifier/logs/")
                         for b in container.list_blobs(name_starts_with="e2e-classifier/")), 30, "the log")
    assert json.loads(container.download_blob(f"e2e-classifier/{METRICS_FILE}").readall()) == performance
    assert _run_dirs() <= dirs_before  # the trainer kept no copy of the images

    evaluation = clients["evaluation"].evaluate(Evaluation("e2e-eval", "e2e-classifier", test_set))
    assert evaluation.status is EvaluationStatus.NOT_STARTED
    done = clients["evaluation"].wait_for_completion("e2e-eval", "e2e-classifier", check_wait_in_secs=1)
    assert done.status is EvaluationStatus.SUCCEEDED
    # the same exported model on the same test set measures the same
    assert done.model_performance["accuracyTop1"] == pytest.approx(performance["accuracyTop1"])

    training.delete_model("e2e-classifier")
    with pytest.raises(requests.HTTPError) as gone:
        training.query_model("e2e-classifier")
    assert gone.value.response.status_code == 404
    assert not list(container.list_blobs(name_starts_with="e2e-classifier/"))


def test_cancel_ends_cancelled_and_the_trainer_is_gone(clients, services, register, api_server):
    training = clients["training"]
    dataset = register(classification("train", per_class=5))
    training.train_model(Model("e2e-cancel", TrainingParameters(dataset, 1, ModelKind.GENERIC_IC)))
    wait_for(lambda: _raw(api_server, "e2e-cancel").get("progress", {}).get("phase")
             in ("extracting features", "training"), TRAINING_TIMEOUT, "the trainer to be working")
    record = services.models.get("e2e-cancel")
    pid = services.backend.pid(record.job_id)
    assert pid is not None
    training.cancel_model_training("e2e-cancel")  # parses the 202's JSON body
    assert training.query_model("e2e-cancel").status in (ModelStatus.CANCELLING, ModelStatus.CANCELLED)
    final = training.wait_for_training_completion("e2e-cancel", check_wait_in_secs=1)
    assert final.status is ModelStatus.CANCELLED
    wait_for(lambda: not alive(pid), 30, "the trainer process to exit")
    training.delete_model("e2e-cancel")


def test_a_killed_trainer_is_resubmitted_and_resumes_from_its_checkpoint(clients, services, register, api_server):
    training = clients["training"]
    dataset = register(classification("train", per_class=4))
    training.train_model(Model("e2e-killed", TrainingParameters(dataset, 1, ModelKind.GENERIC_IC)))
    # wait until the features are cached in a checkpoint: the fine-tuning phase has begun
    wait_for(lambda: _raw(api_server, "e2e-killed").get("progress", {}).get("phase") == "training",
             TRAINING_TIMEOUT, "fine-tuning to start")
    record = services.models.get("e2e-killed")
    pid = services.backend.pid(record.job_id)
    os.killpg(pid, signal.SIGKILL)
    # within a few reconcile intervals the run is resubmitted (or, after a second crash, failed)
    requeued = wait_for(lambda: services.models.get("e2e-killed").attempt == 1 or
                        services.models.get("e2e-killed").status.value == "failed",
                        20 * RECONCILE_SECONDS + 10, "the reconciler to notice the kill")
    assert requeued
    assert services.models.get("e2e-killed").attempt == 1
    final = training.wait_for_training_completion("e2e-killed", check_wait_in_secs=1)
    assert final.status is ModelStatus.SUCCEEDED, final.error
    container = services.storage.container(services.settings.models_container)
    report = json.loads(container.download_blob("e2e-killed/training.json").readall())
    # the cached features came back from the checkpoint instead of being extracted again
    assert report["views_restored"] > 0
    assert report["feature_extractions"] < report["views_restored"]
    training.delete_model("e2e-killed")


def test_images_that_vanish_after_registration_end_dataset_corrupt(clients, services, register):
    sample = classification("train", per_class=2)
    dataset = register(sample)
    container = services.storage.container(services.settings.datasets_container)
    missing = sorted(sample.images)[0]
    container.delete_blob(f"staging/{dataset}/{missing}")
    training = clients["training"]
    training.train_model(Model("e2e-corrupt", TrainingParameters(dataset, 1, ModelKind.GENERIC_IC)))
    final = training.wait_for_training_completion("e2e-corrupt", check_wait_in_secs=1)
    assert final.status is ModelStatus.FAILED
    assert final.error.code == "datasetCorrupt"
    assert missing in final.error.message
    training.delete_model("e2e-corrupt")


def test_a_budget_too_small_ends_not_enough_budget(clients, services, small_classification):
    """The API takes whole hours; the JobSpec carries seconds, so the run is submitted with 3 s."""
    from loupe.enums import ModelKind as Kind
    from loupe.models.record import ModelRecord

    train_set, _ = small_classification
    record = ModelRecord(name="e2e-budget", training_dataset=train_set, budget_hours=1, model_kind=Kind.CLASSIFIER,
                         run_id="budget-run", backend=services.backend.name)
    services.models.repo.store.create(record)
    spec = services.models.job_spec(record, services.datasets.get(train_set), None, budget_seconds=3.0)
    services.models.submit(record, spec)
    final = clients["training"].wait_for_training_completion("e2e-budget", check_wait_in_secs=1)
    assert final.status is ModelStatus.FAILED
    assert final.error.code == "notEnoughBudget"
    assert "minimum" in final.error.message and "suggested" in final.error.message
    clients["training"].delete_model("e2e-budget")
