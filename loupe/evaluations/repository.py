"""Evaluation entities in Table storage (partition = model name, row key = evaluation name)."""
from __future__ import annotations

from typing import Callable

from loupe.evaluations.record import EvaluationRecord
from loupe.storage.clients import Storage
from loupe.storage.names import EVALUATIONS_TABLE
from loupe.storage.records import RunRepository
from loupe.storage.table_store import Stored


class EvaluationRepository:
    def __init__(self, storage: Storage) -> None:
        self.table = storage.table(EVALUATIONS_TABLE)
        self.runs: RunRepository[EvaluationRecord] = RunRepository(self.table, EvaluationRecord.from_entity)
        self.store = self.runs.store

    def find(self, model: str, name: str) -> Stored[EvaluationRecord] | None:
        return self.runs.find(model, name)

    def of_model(self, model: str) -> list[EvaluationRecord]:
        return sorted((s.value for s in self.runs.in_partition(model)), key=lambda r: (r.created, r.name))

    def in_flight(self) -> list[EvaluationRecord]:
        query = "status eq 'notStarted' or status eq 'running'"
        return [EvaluationRecord.from_entity(e) for e in self.table.query_entities(query)]

    def update(self, model: str, name: str, change: Callable[[EvaluationRecord], EvaluationRecord | None],
               run_id: str | None = None) -> EvaluationRecord | None:
        return self.runs.update(model, name, change, run_id)
