"""An evaluation as Loupe stores it, and its wire shape (docs/wire-contract.md#evaluations)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loupe.runs.record import RunRecord
from loupe.storage.entities import wire_time


@dataclass(frozen=True, kw_only=True)
class EvaluationRecord(RunRecord):
    model_name: str
    name: str
    test_dataset: str

    def wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "modelName": self.model_name,
            "createdDateTime": wire_time(self.created),
            "updatedDateTime": wire_time(self.updated),
            "status": self.status.value,  # an evaluation is never cancelled: notStarted, running, succeeded, failed
            "evaluationParameters": {"testDatasetName": self.test_dataset},
        }
        return self.wire_outcome(body)

    def key(self) -> tuple[str, str]:
        return self.model_name, self.name

    def owner_properties(self) -> dict[str, Any]:
        return {"testDataset": self.test_dataset}

    @classmethod
    def owner_fields(cls, entity: dict[str, Any]) -> dict[str, Any]:
        return {"model_name": entity["PartitionKey"], "name": entity["RowKey"], "test_dataset": entity["testDataset"]}
