"""The one run model against real Table storage: the codec round-trips every field, a writer that
knows only the run part keeps the owner's properties, stale runs are refused, retries are bounded."""
from __future__ import annotations

from datetime import timedelta

import pytest

from loupe.enums import ModelKind
from loupe.evaluations.record import EvaluationRecord
from loupe.models.record import ModelRecord
from loupe.runs.record import OpaqueRun, RunStatus
from loupe.runs.table import MAX_ATTEMPTS, RunTable, StaleRun
from loupe.storage.entities import utc_now
from loupe.storage.names import EVALUATIONS_TABLE, MODELS_PARTITION, MODELS_TABLE
from loupe.storage.table_store import ConcurrentChange


@pytest.fixture
def models(services) -> RunTable[ModelRecord]:
    return RunTable(services.storage.table(MODELS_TABLE), ModelRecord)


def _model(name: str, **fields) -> ModelRecord:
    return ModelRecord(name=name, training_dataset="d", budget_hours=2, model_kind=ModelKind.DETECTOR,
                       test_dataset="t", backend="local", run_id=f"run-{name}", **fields)


def test_a_model_record_round_trips_every_field(models, unique_name):
    big = {"tagPerformance": {f"tag{i}": {"averagePrecision": 0.5} for i in range(3000)}}  # > one property
    record = _model(unique_name("codec"), status=RunStatus.SUCCEEDED, job_id="job", attempt=1, started=utc_now(),
                    heartbeat=utc_now(), cancel_requested=utc_now(), progress={"phase": "x", "percent": 1.0},
                    error={"code": "unknown", "message": "m"}, performance=big, run_seconds=61.5)
    models.store.create(record)
    read = models.find(MODELS_PARTITION, record.name).value
    assert read.to_entity() == record.to_entity()  # times are kept to the millisecond, as on the wire
    assert read.performance == big and read.status is RunStatus.SUCCEEDED and read.run_seconds == 61.5
    assert read.budget_seconds == 7200.0 and read.training_cost_minutes == 2
    assert read.wire()["status"] == "succeeded"
    assert _model("w", status=RunStatus.RUNNING).wire()["status"] == "training"


def test_the_run_part_alone_keeps_the_owner_properties(models, services, unique_name):
    record = _model(unique_name("opaque"), performance={"tagPerformance": {f"t{i}": 1 for i in range(4000)}})
    models.store.create(record)
    opaque = RunTable(services.storage.table(MODELS_TABLE), OpaqueRun)
    opaque.update(MODELS_PARTITION, record.name, lambda r: r.with_changes(
        status=RunStatus.FAILED, performance=None, error={"code": "diverged", "message": "nan"}), run_id=record.run_id)
    read = models.find(MODELS_PARTITION, record.name).value
    assert (read.status, read.performance, read.error["code"]) == (RunStatus.FAILED, None, "diverged")
    assert (read.training_dataset, read.test_dataset, read.budget_hours, read.model_kind, read.backend) == (
        "d", "t", 2, ModelKind.DETECTOR, "local")
    raw = services.storage.table(MODELS_TABLE).get_entity(MODELS_PARTITION, record.name)
    assert not [k for k in raw if k.startswith("performance")]  # no chunk of the old value is left behind


def test_a_stale_run_is_refused(models, unique_name):
    record = _model(unique_name("stale"))
    models.store.create(record)
    with pytest.raises(StaleRun):
        models.update(MODELS_PARTITION, record.name, lambda r: r.with_changes(attempt=5), run_id="another-run")
    assert models.update(MODELS_PARTITION, "no-such-model", lambda r: r) is None


def test_retries_on_concurrent_changes_are_bounded(models, unique_name):
    record = _model(unique_name("busy"))
    models.store.create(record)
    calls = 0

    def change_that_always_loses(current: ModelRecord) -> ModelRecord:
        nonlocal calls
        calls += 1
        stored = models.find(MODELS_PARTITION, record.name)  # another writer gets in first, every time
        models.store.replace(stored.value.with_changes(attempt=stored.value.attempt + 1), stored.table_etag)
        return current.with_changes(progress={"phase": "mine"})

    with pytest.raises(ConcurrentChange):
        models.update(MODELS_PARTITION, record.name, change_that_always_loses)
    assert calls == MAX_ATTEMPTS


def test_in_flight_lists_only_runs_that_have_not_ended(services, unique_name):
    table = RunTable(services.storage.table(EVALUATIONS_TABLE), EvaluationRecord)
    model = unique_name("m")
    for name, status in (("a", RunStatus.NOT_STARTED), ("b", RunStatus.RUNNING), ("c", RunStatus.SUCCEEDED),
                         ("d", RunStatus.FAILED)):
        table.store.create(EvaluationRecord(model_name=model, name=name, test_dataset="t", status=status,
                                            created=utc_now() - timedelta(seconds=1)))
    mine = sorted(r.name for r in table.in_flight() if r.model_name == model)
    assert mine == ["a", "b"]
