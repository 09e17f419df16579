"""Model entities in Table storage (one partition; the row key is the model name)."""
from __future__ import annotations

from typing import Callable

from loupe.models.record import PARTITION, ModelRecord
from loupe.runs.table import RunTable
from loupe.storage.clients import Storage
from loupe.storage.names import MODELS_TABLE
from loupe.storage.table_store import Stored


class ModelRepository:
    def __init__(self, storage: Storage) -> None:
        self.runs: RunTable[ModelRecord] = RunTable(storage.table(MODELS_TABLE), ModelRecord)
        self.store = self.runs.store

    def find(self, name: str) -> Stored[ModelRecord] | None:
        return self.runs.find(PARTITION, name)

    def all(self) -> list[ModelRecord]:
        return sorted((s.value for s in self.runs.in_partition(PARTITION)), key=lambda r: (r.created, r.name))

    def update(self, name: str, change: Callable[[ModelRecord], ModelRecord | None],
               run_id: str | None = None) -> ModelRecord | None:
        return self.runs.update(PARTITION, name, change, run_id)
