"""Read-modify-write of run records (models, evaluations) that retries on concurrent changes.

The API (create, cancel, delete), the trainer (status, progress, heartbeat) and the reconciler
all write the same entity; each write re-reads and re-applies its change if another writer got
in first, and a write from a stale run (another run id) is refused.
"""
from __future__ import annotations

from typing import Any, Callable, Generic, Protocol, TypeVar

from azure.data.tables import TableClient

from loupe.storage.table_store import ConcurrentChange, Stored, TableStore

MAX_ATTEMPTS = 20


class RunRecord(Protocol):
    run_id: str

    def to_entity(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=RunRecord)


class StaleRun(Exception):
    """The record was deleted or re-created: this run no longer owns it."""


class RunRepository(Generic[R]):
    def __init__(self, table: TableClient, from_entity: Callable[[dict[str, Any]], R]) -> None:
        self.store: TableStore[R] = TableStore(table, lambda r: r.to_entity(), from_entity)

    def find(self, partition: str, row: str) -> Stored[R] | None:
        return self.store.get(partition, row)

    def in_partition(self, partition: str) -> list[Stored[R]]:
        return list(self.store.list(partition))

    def update(self, partition: str, row: str, change: Callable[[R], R | None],
               run_id: str | None = None) -> R | None:
        """Apply ``change`` to the current record; None from ``change`` means 'nothing to write'.

        Returns None when the record is gone. Raises StaleRun when ``run_id`` is given and the
        record is gone or belongs to another run.
        """
        for _ in range(MAX_ATTEMPTS):
            stored = self.find(partition, row)
            if stored is None or (run_id is not None and stored.value.run_id != run_id):
                if run_id is not None:
                    raise StaleRun(f"{partition}/{row}")
                return None
            new = change(stored.value)
            if new is None:
                return stored.value
            try:
                self.store.replace(new, stored.table_etag)
                return new
            except ConcurrentChange:
                continue
        raise ConcurrentChange(f"{partition}/{row} kept changing; gave up after {MAX_ATTEMPTS} attempts")
