"""The state every run carries, whatever it produces (a model, an evaluation), and its codec.

A run record is one Table entity: the owner's own properties (a model's training parameters,
an evaluation's test set) plus the run properties written here. Writers that only know the run
part (the job runner inside a trainer) round-trip the owner's properties untouched
(``OpaqueRun``), so there is one codec for the run part and one place that knows its names.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any, Self

from loupe.storage.entities import get_json, parse_time, put_json, utc_now, wire_time

# The samples client builds Error(**json), so an error may carry only these keys (docs/wire-contract.md#model-error-keys).
ERROR_KEYS = ("code", "message", "target", "details")


class RunStatus(str, Enum):
    """Where a run is. Each API shows it in its own words (a model's RUNNING is ``training``)."""

    NOT_STARTED = "notStarted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


# entity property -> attribute, for the times and the JSON values of the run part
_TIMES = {"created": "created", "updated": "updated", "started": "started", "heartbeat": "heartbeat",
          "cancelRequested": "cancel_requested"}
_JSONS = {"error": "error", "performance": "performance", "progress": "progress"}
_SCALARS = {"status": "status", "runId": "run_id", "jobId": "job_id", "attempt": "attempt",
            "runSeconds": "run_seconds"}
RUN_PROPERTIES = frozenset({*_TIMES, *_JSONS, *_SCALARS})


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """Base of every run record; subclasses add the owner's fields and their codec."""

    status: RunStatus = RunStatus.NOT_STARTED
    created: datetime = field(default_factory=utc_now)
    updated: datetime = field(default_factory=utc_now)
    # a fresh id per run: writes from a stale run (an old trainer still alive after the record was
    # deleted and re-created) are refused
    run_id: str = ""
    job_id: str | None = None
    # 0 for the first submission; a resubmission after a crash is the next attempt
    attempt: int = 0
    started: datetime | None = None
    heartbeat: datetime | None = None
    cancel_requested: datetime | None = None
    # {"phase", "percent", "message", "etaSeconds"} from the runner, shown beyond the wire contract
    progress: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    performance: dict[str, Any] | None = None
    # seconds the run's attempts spent, summed (a model's trainingCostInMinutes)
    run_seconds: float = 0.0

    # --- what subclasses define
    def key(self) -> tuple[str, str]:
        """(PartitionKey, RowKey)."""
        raise NotImplementedError

    def owner_properties(self) -> dict[str, Any]:
        """The owner's entity properties (no keys, no run properties)."""
        raise NotImplementedError

    @classmethod
    def owner_fields(cls, entity: dict[str, Any]) -> dict[str, Any]:
        """Constructor arguments for the owner's fields, read from an entity."""
        raise NotImplementedError

    # --- shared
    def with_changes(self, **changes: Any) -> Self:
        return replace(self, updated=utc_now(), **changes)

    def to_entity(self) -> dict[str, Any]:
        partition, row = self.key()
        entity: dict[str, Any] = {"PartitionKey": partition, "RowKey": row, **self.owner_properties()}
        for prop, attr in _TIMES.items():
            moment = getattr(self, attr)
            entity[prop] = wire_time(moment) if moment else None
        entity.update(status=self.status.value, runId=self.run_id, jobId=self.job_id, attempt=self.attempt,
                      runSeconds=float(self.run_seconds))
        for prop, attr in _JSONS.items():
            put_json(entity, prop, getattr(self, attr))
        return {k: v for k, v in entity.items() if v is not None}

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> Self:
        values: dict[str, Any] = {attr: parse_time(entity[prop]) if entity.get(prop) else None
                                  for prop, attr in _TIMES.items()}
        values.update({attr: get_json(entity, prop) for prop, attr in _JSONS.items()})
        values.update(status=RunStatus(entity["status"]), run_id=entity.get("runId", ""),
                      job_id=entity.get("jobId"), attempt=int(entity.get("attempt", 0)),
                      run_seconds=float(entity.get("runSeconds", 0.0)))
        return cls(**cls.owner_fields(entity), **values)

    def wire_outcome(self, body: dict[str, Any]) -> dict[str, Any]:
        """Add what every run shows on the wire once it has it: performance, error, progress."""
        if self.performance is not None:
            body["modelPerformance"] = self.performance
        if self.error is not None:
            body["error"] = {k: v for k, v in self.error.items() if k in ERROR_KEYS}
        if self.progress is not None and not self.status.is_terminal:
            body["progress"] = self.progress
        return body


def is_owner_property(name: str) -> bool:
    """True for an entity property that is neither a key nor part of the run (nor a JSON chunk of one)."""
    if name in ("PartitionKey", "RowKey"):
        return False
    return name.split("__", 1)[0] not in RUN_PROPERTIES


@dataclass(frozen=True, kw_only=True)
class OpaqueRun(RunRecord):
    """A run record read by a writer that does not know its owner: the owner's properties are
    kept as they were read and written back unchanged."""

    partition: str
    row: str
    owner: dict[str, Any] = field(default_factory=dict)

    def key(self) -> tuple[str, str]:
        return self.partition, self.row

    def owner_properties(self) -> dict[str, Any]:
        return dict(self.owner)

    @classmethod
    def owner_fields(cls, entity: dict[str, Any]) -> dict[str, Any]:
        return {"partition": entity["PartitionKey"], "row": entity["RowKey"],
                "owner": {k: v for k, v in entity.items() if is_owner_property(k)}}
