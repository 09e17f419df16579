"""A thin layer over one Table: typed get/create/replace/delete with optimistic concurrency.

Every write that depends on a read passes the read's ETag, so two writers (an API call and a
blob event, or the trainer and a cancel) never overwrite each other silently.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

T = TypeVar("T")


class AlreadyExists(Exception):
    pass


class ConcurrentChange(Exception):
    """The entity changed (or vanished) since it was read."""


@dataclass(frozen=True)
class Stored(Generic[T]):
    value: T
    table_etag: str


class TableStore(Generic[T]):
    def __init__(
        self,
        table: TableClient,
        to_entity: Callable[[T], dict[str, Any]],
        from_entity: Callable[[dict[str, Any]], T],
    ) -> None:
        self.table = table
        self._to_entity = to_entity
        self._from_entity = from_entity

    def get(self, partition: str, row: str) -> Stored[T] | None:
        try:
            entity = self.table.get_entity(partition, row)
        except ResourceNotFoundError:
            return None
        return Stored(self._from_entity(entity), entity.metadata["etag"])

    def create(self, value: T) -> Stored[T]:
        try:
            meta = self.table.create_entity(self._to_entity(value))
        except ResourceExistsError:
            raise AlreadyExists() from None
        return Stored(value, meta["etag"])

    def replace(self, value: T, table_etag: str) -> Stored[T]:
        try:
            meta = self.table.update_entity(
                self._to_entity(value), mode=UpdateMode.REPLACE, etag=table_etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            raise ConcurrentChange() from None
        return Stored(value, meta["etag"])

    def delete(self, partition: str, row: str, table_etag: str | None = None) -> None:
        try:
            if table_etag is None:
                self.table.delete_entity(partition, row)
            else:
                self.table.delete_entity(partition, row, etag=table_etag, match_condition=MatchConditions.IfNotModified)
        except ResourceModifiedError:
            raise ConcurrentChange() from None
        except ResourceNotFoundError:
            pass

    def list(self, partition: str) -> Iterator[Stored[T]]:
        return self.query("PartitionKey eq @partition", {"partition": partition})

    def query(self, query_filter: str, parameters: dict[str, Any]) -> Iterator[Stored[T]]:
        """Entities matching an OData filter whose values are ``@name`` parameters (the SDK escapes them)."""
        for entity in self.table.query_entities(query_filter, parameters=parameters):
            yield Stored(self._from_entity(entity), entity.metadata["etag"])
