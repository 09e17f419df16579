"""The reconciler against real Table storage: every way a run can stop reporting ends in a
terminal status with its reason. The backend is scripted where a real one can't be made to
misbehave on cue (a hung trainer, a Spot preemption)."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from loupe.enums import ModelKind
from loupe.evaluations.record import EvaluationRecord
from loupe.jobs.backend import JobState, JobStatus
from loupe.models.record import ModelRecord
from loupe.reconcile import OVERRUN, SUBMIT_GRACE, Reconciler
from loupe.runs.record import RunStatus
from loupe.storage.entities import utc_now


class ScriptedBackend:
    """A JobBackend whose answers the test sets; records cancels and submissions."""

    name = "scripted"

    def __init__(self) -> None:
        self.states: dict[str, JobStatus] = {}
        self.cancelled: list[str] = []
        self.submitted: list[str] = []

    def submit(self, spec, spec_blob):
        self.submitted.append(spec.job_id)
        self.states[spec.job_id] = JobStatus(JobState.QUEUED)
        return spec.job_id

    def cancel(self, job_id):
        self.cancelled.append(job_id)

    def status(self, job_id):
        return self.states.get(job_id, JobStatus(JobState.NOT_FOUND, detail="unknown job"))


@pytest.fixture
def backend():
    return ScriptedBackend()


@pytest.fixture
def reconciler(services, backend):
    from loupe.evaluations.service import EvaluationService
    from loupe.models.service import ModelService
    from loupe.runs.submit import RunSubmitter

    submitter = RunSubmitter(services.storage, backend)
    models = ModelService(services.storage, services.datasets, backend, submitter)
    evaluations = EvaluationService(services.storage, services.datasets, models.repo, backend, submitter)
    return Reconciler(models, evaluations, backend, heartbeat_timeout_seconds=60)


@pytest.fixture
def registered_dataset(services, unique_name):
    from loupe.datasets.requests import DatasetIn
    from tests.support.data import classification_files, upload

    name = unique_name("rds")
    container = services.storage.container(services.settings.datasets_container)
    url = upload(container, f"staging/{name}", classification_files())["annotations.json"]
    services.datasets.register(name, DatasetIn(annotation_kind="imageClassification", annotation_file_uris=[url]))
    return name


def _model(reconciler, name, dataset="d", **fields) -> ModelRecord:
    record = ModelRecord(name=name, training_dataset=dataset, budget_hours=1, model_kind=ModelKind.CLASSIFIER,
                         run_id=f"run-{name}", **fields)
    reconciler.models.repo.store.create(record)
    return record


def _status(reconciler, name) -> ModelRecord:
    return reconciler.models.repo.find(name).value


def test_a_vanished_job_fails_the_model(reconciler, backend, unique_name):
    name = unique_name("gone")
    silent = utc_now() - timedelta(seconds=61)  # the fixture's heartbeat timeout is 60 s
    _model(reconciler, name, status=RunStatus.RUNNING, job_id="job-gone", started=silent, heartbeat=silent)
    actions = reconciler.run_once()
    assert any(a.model == name and a.action == "failed" for a in actions)
    record = _status(reconciler, name)
    assert record.status is RunStatus.FAILED
    assert record.error["code"] == "unknown" and "vanished" in record.error["message"]


def test_a_vanished_job_whose_trainer_still_reports_is_left_alone(reconciler, backend, unique_name):
    """The backend lost track of the job (a restarted local host, a lost record), but the trainer's
    heartbeat is fresh: a run that is alive and reporting is never failed."""
    name = unique_name("lost")
    _model(reconciler, name, status=RunStatus.RUNNING, job_id="job-lost", started=utc_now(), heartbeat=utc_now())
    assert not [a for a in reconciler.run_once() if a.model == name]
    assert _status(reconciler, name).status is RunStatus.RUNNING


def test_a_silent_trainer_is_stopped_and_failed(reconciler, backend, unique_name):
    name = unique_name("silent")
    backend.states["job-silent"] = JobStatus(JobState.RUNNING)
    stale = utc_now() - timedelta(seconds=300)
    _model(reconciler, name, status=RunStatus.RUNNING, job_id="job-silent", started=stale, heartbeat=stale)
    reconciler.run_once()
    record = _status(reconciler, name)
    assert record.status is RunStatus.FAILED
    assert "no heartbeat" in record.error["message"]
    assert "job-silent" in backend.cancelled


def test_a_run_far_past_its_budget_is_stopped(reconciler, backend, unique_name):
    name = unique_name("late")
    backend.states["job-late"] = JobStatus(JobState.RUNNING)
    started = utc_now() - timedelta(hours=1) - OVERRUN - timedelta(minutes=1)
    _model(reconciler, name, status=RunStatus.RUNNING, job_id="job-late", started=started, heartbeat=utc_now())
    reconciler.run_once()
    assert _status(reconciler, name).status is RunStatus.FAILED
    assert "budget" in _status(reconciler, name).error["message"]


def test_a_crashed_run_is_resubmitted_once_then_failed(reconciler, backend, registered_dataset, unique_name):
    name = unique_name("crash")
    first = _model(reconciler, name, dataset=registered_dataset, status=RunStatus.RUNNING, job_id="job-crash",
                   started=utc_now(), heartbeat=utc_now())
    backend.states["job-crash"] = JobStatus(JobState.COMPLETED, exit_code=-9, detail="killed by SIGKILL")
    actions = reconciler.run_once()
    assert any(a.model == name and a.action == "resubmitted" for a in actions)
    record = _status(reconciler, name)
    assert record.attempt == 1 and record.status is RunStatus.RUNNING
    assert record.job_id in backend.submitted and record.job_id != first.job_id
    backend.states[record.job_id] = JobStatus(JobState.COMPLETED, exit_code=-9, detail="killed by SIGKILL")
    reconciler.run_once()
    record = _status(reconciler, name)
    assert record.status is RunStatus.FAILED
    assert "SIGKILL" in record.error["message"]


def test_a_cancel_whose_job_is_gone_ends_cancelled(reconciler, backend, unique_name):
    name = unique_name("cancel")
    backend.states["job-cancel"] = JobStatus(JobState.COMPLETED, exit_code=-15, detail="killed by SIGTERM")
    _model(reconciler, name, status=RunStatus.CANCELLING, job_id="job-cancel", cancel_requested=utc_now())
    reconciler.run_once()
    assert _status(reconciler, name).status is RunStatus.CANCELLED


def test_a_model_never_submitted_fails_after_a_grace_period(reconciler, unique_name):
    name = unique_name("never")
    record = _model(reconciler, name)
    reconciler.models.repo.store.replace(replace(record, created=utc_now() - SUBMIT_GRACE - timedelta(seconds=5)),
                                         reconciler.models.repo.find(name).table_etag)
    reconciler.run_once()
    assert _status(reconciler, name).status is RunStatus.FAILED
    assert "never submitted" in _status(reconciler, name).error["message"]


def test_a_preemption_is_noted_not_failed(reconciler, backend, unique_name):
    name = unique_name("spot")
    backend.states["job-spot"] = JobStatus(JobState.PREEMPTED, requeues=1)
    _model(reconciler, name, status=RunStatus.RUNNING, job_id="job-spot", started=utc_now(), heartbeat=utc_now())
    reconciler.run_once()
    record = _status(reconciler, name)
    assert record.status is RunStatus.RUNNING
    assert "preempted" in record.progress["message"]


def test_terminal_models_are_left_alone(reconciler, backend, unique_name):
    name = unique_name("done")
    _model(reconciler, name, status=RunStatus.SUCCEEDED, job_id="job-done")
    reconciler.run_once()
    assert _status(reconciler, name).status is RunStatus.SUCCEEDED


def test_a_dead_evaluation_fails_with_internal_server_error(reconciler, backend, unique_name):
    model = unique_name("evm")
    evaluation = EvaluationRecord(model_name=model, name="e1", test_dataset="d", status=RunStatus.RUNNING,
                                  run_id="r", job_id="job-eval-gone")
    reconciler.evaluations.repo.store.create(evaluation)
    reconciler.run_once()
    record = reconciler.evaluations.repo.find(model, "e1").value
    assert record.status is RunStatus.FAILED
    assert record.error["code"] == "internalServerError"
