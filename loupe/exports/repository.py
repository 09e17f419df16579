"""Export entities in Table storage (partition = model name, row key = the export's key)."""
from __future__ import annotations

from loupe.exports.record import ExportRecord
from loupe.runs.table import RunTable
from loupe.storage.clients import Storage
from loupe.storage.names import EXPORTS_TABLE
from loupe.storage.table_store import Stored


class ExportRepository:
    def __init__(self, storage: Storage) -> None:
        self.runs: RunTable[ExportRecord] = RunTable(storage.table(EXPORTS_TABLE), ExportRecord)
        self.store = self.runs.store

    def find(self, model: str, key: str) -> Stored[ExportRecord] | None:
        return self.runs.find(model, key)

    def of_model(self, model: str) -> list[ExportRecord]:
        return sorted((s.value for s in self.runs.in_partition(model)), key=lambda r: (r.created, r.name))

    def in_flight(self) -> list[ExportRecord]:
        return self.runs.in_flight()

    def delete_of_model(self, model: str) -> None:
        """Every export of a deleted model (its zips go with the model's folder)."""
        for stored in self.runs.in_partition(model):
            self.store.delete(stored.value.model_name, stored.value.name)
