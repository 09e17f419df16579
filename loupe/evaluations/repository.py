"""Evaluation entities in Table storage (partition = model name, row key = evaluation name)."""
from __future__ import annotations

from typing import Callable

from loupe.evaluations.record import EvaluationRecord
from loupe.runs.table import RunTable
from loupe.storage.clients import Storage
from loupe.storage.names import EVALUATIONS_TABLE
from loupe.storage.table_store import Stored


class EvaluationRepository:
    def __init__(self, storage: Storage) -> None:
        self.runs: RunTable[EvaluationRecord] = RunTable(storage.table(EVALUATIONS_TABLE), EvaluationRecord)
        self.store = self.runs.store

    def find(self, model: str, name: str) -> Stored[EvaluationRecord] | None:
        return self.runs.find(model, name)

    def of_model(self, model: str) -> list[EvaluationRecord]:
        return sorted((s.value for s in self.runs.in_partition(model)), key=lambda r: (r.created, r.name))

    def in_flight(self) -> list[EvaluationRecord]:
        return self.runs.in_flight()

    def update(self, model: str, name: str, change: Callable[[EvaluationRecord], EvaluationRecord | None],
               run_id: str | None = None) -> EvaluationRecord | None:
        return self.runs.update(model, name, change, run_id)

    def delete_of_model(self, model: str) -> None:
        """Every evaluation of a deleted model."""
        for stored in self.runs.in_partition(model):
            self.store.delete(stored.value.model_name, stored.value.name)
