"""An evaluation as Loupe stores it, and its wire shape (api-spec.md A.5)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from loupe.enums import EvaluationStatus
from loupe.models.record import ERROR_KEYS
from loupe.storage.entities import get_json, parse_time, put_json, utc_now, wire_time


@dataclass(frozen=True)
class EvaluationRecord:
    model_name: str
    name: str
    test_dataset: str
    status: EvaluationStatus = EvaluationStatus.NOT_STARTED
    created: datetime = field(default_factory=utc_now)
    updated: datetime = field(default_factory=utc_now)
    error: dict[str, Any] | None = None
    performance: dict[str, Any] | None = None
    run_id: str = ""
    job_id: str | None = None
    attempt: int = 0
    started: datetime | None = None
    heartbeat: datetime | None = None
    progress: dict[str, Any] | None = None

    def with_changes(self, **changes: Any) -> "EvaluationRecord":
        return replace(self, updated=utc_now(), **changes)

    def wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "modelName": self.model_name,
            "createdDateTime": wire_time(self.created),
            "updatedDateTime": wire_time(self.updated),
            "status": self.status.value,
            "evaluationParameters": {"testDatasetName": self.test_dataset},
        }
        if self.performance is not None:
            body["modelPerformance"] = self.performance
        if self.error is not None:
            body["error"] = {k: v for k, v in self.error.items() if k in ERROR_KEYS}
        if self.progress is not None and not self.status.is_terminal:
            body["progress"] = self.progress
        return body

    def to_entity(self) -> dict[str, Any]:
        entity: dict[str, Any] = {
            "PartitionKey": self.model_name,
            "RowKey": self.name,
            "testDataset": self.test_dataset,
            "status": self.status.value,
            "created": wire_time(self.created),
            "updated": wire_time(self.updated),
            "runId": self.run_id,
            "jobId": self.job_id,
            "attempt": self.attempt,
            "started": wire_time(self.started) if self.started else None,
            "heartbeat": wire_time(self.heartbeat) if self.heartbeat else None,
        }
        put_json(entity, "error", self.error)
        put_json(entity, "performance", self.performance)
        put_json(entity, "progress", self.progress)
        return {k: v for k, v in entity.items() if v is not None}

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> "EvaluationRecord":
        def when(key: str) -> datetime | None:
            return parse_time(entity[key]) if entity.get(key) else None

        return cls(
            model_name=entity["PartitionKey"],
            name=entity["RowKey"],
            test_dataset=entity["testDataset"],
            status=EvaluationStatus(entity["status"]),
            created=parse_time(entity["created"]),
            updated=parse_time(entity["updated"]),
            error=get_json(entity, "error"),
            performance=get_json(entity, "performance"),
            run_id=entity.get("runId", ""),
            job_id=entity.get("jobId"),
            attempt=int(entity.get("attempt", 0)),
            started=when("started"),
            heartbeat=when("heartbeat"),
            progress=get_json(entity, "progress"),
        )
