"""A model (one training run) as Loupe stores it, and its wire shape (api-spec.md A.4)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from loupe.enums import ModelKind, ModelStatus
from loupe.storage.entities import get_json, parse_time, put_json, utc_now, wire_time

PARTITION = "model"
ERROR_KEYS = ("code", "message", "target", "details")  # the samples client parses Error(**json) (G8)


@dataclass(frozen=True)
class ModelRecord:
    name: str
    training_dataset: str
    budget_hours: int
    model_kind: ModelKind
    test_dataset: str | None = None
    status: ModelStatus = ModelStatus.NOT_STARTED
    created: datetime = field(default_factory=utc_now)
    updated: datetime = field(default_factory=utc_now)
    error: dict[str, Any] | None = None
    performance: dict[str, Any] | None = None
    training_seconds: float = 0.0
    # run bookkeeping
    run_id: str = ""
    job_id: str | None = None
    backend: str | None = None
    attempt: int = 0
    budget_seconds: float = 0.0
    started: datetime | None = None
    heartbeat: datetime | None = None
    cancel_requested: datetime | None = None
    # {"phase", "percent", "message", "etaSeconds"} from the trainer, shown beyond the wire contract
    progress: dict[str, Any] | None = None

    def with_changes(self, **changes: Any) -> "ModelRecord":
        return replace(self, updated=utc_now(), **changes)

    @property
    def training_cost_minutes(self) -> int:
        return int(math.ceil(self.training_seconds / 60.0)) if self.training_seconds > 0 else 0

    def wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "createdDateTime": wire_time(self.created),
            "updatedDateTime": wire_time(self.updated),
            "status": self.status.value,
            "trainingParameters": {
                "trainingDatasetName": self.training_dataset,
                "timeBudgetInHours": self.budget_hours,
                "modelKind": self.model_kind.value,  # always (G4)
            },
            "trainingCostInMinutes": self.training_cost_minutes,
        }
        if self.test_dataset:
            body["evaluationParameters"] = {"testDatasetName": self.test_dataset}
        if self.performance is not None:
            body["modelPerformance"] = self.performance
        if self.error is not None:
            body["error"] = {k: v for k, v in self.error.items() if k in ERROR_KEYS}
        if self.progress is not None and not self.status.is_terminal:
            body["progress"] = self.progress
        return body

    def to_entity(self) -> dict[str, Any]:
        entity: dict[str, Any] = {
            "PartitionKey": PARTITION,
            "RowKey": self.name,
            "trainingDataset": self.training_dataset,
            "budgetHours": self.budget_hours,
            "modelKind": self.model_kind.value,
            "testDataset": self.test_dataset,
            "status": self.status.value,
            "created": wire_time(self.created),
            "updated": wire_time(self.updated),
            "trainingSeconds": float(self.training_seconds),
            "runId": self.run_id,
            "jobId": self.job_id,
            "backend": self.backend,
            "attempt": self.attempt,
            "budgetSeconds": float(self.budget_seconds),
            "started": wire_time(self.started) if self.started else None,
            "heartbeat": wire_time(self.heartbeat) if self.heartbeat else None,
            "cancelRequested": wire_time(self.cancel_requested) if self.cancel_requested else None,
        }
        put_json(entity, "error", self.error)
        put_json(entity, "performance", self.performance)
        put_json(entity, "progress", self.progress)
        return {k: v for k, v in entity.items() if v is not None}

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> "ModelRecord":
        def when(key: str) -> datetime | None:
            return parse_time(entity[key]) if entity.get(key) else None

        return cls(
            name=entity["RowKey"],
            training_dataset=entity["trainingDataset"],
            budget_hours=int(entity["budgetHours"]),
            model_kind=ModelKind(entity["modelKind"]),
            test_dataset=entity.get("testDataset"),
            status=ModelStatus(entity["status"]),
            created=parse_time(entity["created"]),
            updated=parse_time(entity["updated"]),
            error=get_json(entity, "error"),
            performance=get_json(entity, "performance"),
            training_seconds=float(entity.get("trainingSeconds", 0.0)),
            run_id=entity.get("runId", ""),
            job_id=entity.get("jobId"),
            backend=entity.get("backend"),
            attempt=int(entity.get("attempt", 0)),
            budget_seconds=float(entity.get("budgetSeconds", 0.0)),
            started=when("started"),
            heartbeat=when("heartbeat"),
            cancel_requested=when("cancelRequested"),
            progress=get_json(entity, "progress"),
        )
