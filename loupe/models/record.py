"""A model (one training run) as Loupe stores it, and its wire shape (docs/wire-contract.md#models)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from loupe.enums import ModelKind
from loupe.runs.record import RunRecord, RunStatus
from loupe.storage.entities import wire_time
from loupe.storage.names import MODELS_PARTITION

PARTITION = MODELS_PARTITION


def model_status(status: RunStatus) -> str:
    """A run's status in the models API's words (docs/wire-contract.md#model-statuses): a running
    model is ``training``; the other statuses keep their names."""
    return "training" if status is RunStatus.RUNNING else status.value


@dataclass(frozen=True, kw_only=True)
class ModelRecord(RunRecord):
    name: str
    training_dataset: str
    budget_hours: int
    model_kind: ModelKind
    test_dataset: str | None = None
    backend: str | None = None  # the job backend that runs it ("local", "azure-batch")
    # a classifier's kind when its owner fixed it (Custom Vision's classificationType); None: the data decides
    multilabel: bool | None = None
    # detectors trained for export packages: "stretch" (docs/exports.md#letterbox-trained-detectors);
    # None: the recipe's default
    input_resize: str | None = None

    @property
    def budget_seconds(self) -> float:
        return self.budget_hours * 3600.0

    @property
    def training_cost_minutes(self) -> int:
        return int(math.ceil(self.run_seconds / 60.0)) if self.run_seconds > 0 else 0

    def wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "createdDateTime": wire_time(self.created),
            "updatedDateTime": wire_time(self.updated),
            "status": model_status(self.status),
            "trainingParameters": {
                "trainingDatasetName": self.training_dataset,
                "timeBudgetInHours": self.budget_hours,
                "modelKind": self.model_kind.value,  # always: the samples client reads it
            },
            "trainingCostInMinutes": self.training_cost_minutes,
        }
        if self.input_resize == "stretch":  # trained for export packages (trainingParameters.exportable)
            body["trainingParameters"]["exportable"] = True
        if self.test_dataset:
            body["evaluationParameters"] = {"testDatasetName": self.test_dataset}
        return self.wire_outcome(body)

    def key(self) -> tuple[str, str]:
        return PARTITION, self.name

    def owner_properties(self) -> dict[str, Any]:
        return {"trainingDataset": self.training_dataset, "budgetHours": self.budget_hours,
                "modelKind": self.model_kind.value, "testDataset": self.test_dataset, "backend": self.backend,
                "multilabel": self.multilabel, "inputResize": self.input_resize}

    @classmethod
    def owner_fields(cls, entity: dict[str, Any]) -> dict[str, Any]:
        return {"name": entity["RowKey"], "training_dataset": entity["trainingDataset"],
                "budget_hours": int(entity["budgetHours"]), "model_kind": ModelKind(entity["modelKind"]),
                "test_dataset": entity.get("testDataset"), "backend": entity.get("backend"),
                "multilabel": entity.get("multilabel"), "input_resize": entity.get("inputResize")}
