"""Read-modify-write of run records that retries on concurrent changes, a bounded number of times.

The API (create, cancel, delete), the runner inside a job (status, progress, heartbeat) and the
reconciler all write the same entity; each write re-reads and re-applies its change if another
writer got in first, and a write from a stale run (another run id) is refused.
"""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

from azure.data.tables import TableClient

from loupe.runs.record import RunRecord, RunStatus
from loupe.storage.table_store import ConcurrentChange, Stored, TableStore

# Writers of one run are few (API, runner, reconciler); twenty lost races in a row means
# something keeps rewriting the entity, and the caller gets ConcurrentChange.
MAX_ATTEMPTS = 20

R = TypeVar("R", bound=RunRecord)


class StaleRun(Exception):
    """The record was deleted or re-created: this run no longer owns it."""


class RunTable(Generic[R]):
    def __init__(self, table: TableClient, record_type: type[R]) -> None:
        self.table = table
        self.store: TableStore[R] = TableStore(table, lambda r: r.to_entity(), record_type.from_entity)

    def find(self, partition: str, row: str) -> Stored[R] | None:
        return self.store.get(partition, row)

    def in_partition(self, partition: str) -> list[Stored[R]]:
        return list(self.store.list(partition))

    def in_flight(self) -> list[R]:
        """Every record whose run has not ended, across partitions."""
        query = " or ".join(f"status eq @s{i}" for i, _ in enumerate(_IN_FLIGHT))
        parameters = {f"s{i}": status.value for i, status in enumerate(_IN_FLIGHT)}
        return [stored.value for stored in self.store.query(query, parameters)]

    def update(self, partition: str, row: str, change: Callable[[R], R | None],
               run_id: str | None = None) -> R | None:
        """Apply ``change`` to the current record; None from ``change`` means 'nothing to write'.

        Returns None when the record is gone. Raises StaleRun when ``run_id`` is given and the
        record is gone or belongs to another run; ConcurrentChange after MAX_ATTEMPTS lost races.
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


_IN_FLIGHT = tuple(status for status in RunStatus if not status.is_terminal)
