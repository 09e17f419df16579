"""Custom Vision's tables and blobs (docs/customvision.md#storage).

Every record is one entity: its fields as JSON (``loupe.storage.entities.put_json``, split when
large) under ``data``. Projects live in one partition; tags, images, iterations and stored
predictions are partitioned by their project's id, so a project's listing is one partition query
and deleting a project deletes its partitions. Writes that depend on a read carry its ETag
(``update``), so concurrent uploads, region and tag edits never overwrite each other.

Tag names are unique per project through an index entity per lower-cased name (partition
``<project>~names``): creating it is the atomic check.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Generic, Iterator, TypeVar

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from loupe.customvision.records import (
    ImageRecord,
    IterationRecord,
    PredictionRecord,
    ProjectRecord,
    Record,
    TagRecord,
)
from loupe.storage.clients import Storage
from loupe.storage.entities import get_json, put_json
from loupe.storage.names import (
    CV_IMAGES_TABLE,
    CV_ITERATIONS_TABLE,
    CV_PREDICTIONS_TABLE,
    CV_PROJECTS_TABLE,
    CV_TAGS_TABLE,
)
from loupe.storage.table_store import AlreadyExists, ConcurrentChange, Stored, TableStore

R = TypeVar("R", bound=Record)

PROJECTS_PARTITION = "project"
# bounded read-modify-write: a concurrent change re-reads and retries this many times
UPDATE_ATTEMPTS = 16


class Vanished(Exception):
    """The entity was deleted while being updated."""


class RecordTable(Generic[R]):
    """Records of one type in one table, row key = the record's id."""

    def __init__(self, storage: Storage, table: str, cls: type[R], partition_of: Callable[[R], str]) -> None:
        self.cls = cls
        self.partition_of = partition_of
        self.store: TableStore[R] = TableStore(storage.table(table), self._to_entity, self._from_entity)

    def _to_entity(self, record: R) -> dict:
        entity = {"PartitionKey": self.partition_of(record), "RowKey": record.id}  # type: ignore[attr-defined]
        put_json(entity, "data", record.model_dump(mode="json"))
        return entity

    def _from_entity(self, entity: dict) -> R:
        return self.cls.model_validate(get_json(entity, "data"))

    def get(self, partition: str, row: str) -> R | None:
        if not _safe_key(row):
            return None
        stored = self.store.get(partition, row)
        return stored.value if stored else None

    def find(self, partition: str, row: str) -> Stored[R] | None:
        return self.store.get(partition, row) if _safe_key(row) else None

    def create(self, record: R) -> R:
        """Raises AlreadyExists."""
        self.store.create(record)
        return record

    def put(self, record: R) -> R:
        self.store.table.upsert_entity(self._to_entity(record))
        return record

    def all(self, partition: str) -> list[R]:
        return [stored.value for stored in self.store.list(partition)]

    def stored(self, partition: str) -> Iterator[Stored[R]]:
        return self.store.list(partition)

    def update(self, partition: str, row: str, change: Callable[[R], R | None]) -> R | None:
        """Apply ``change`` to the current record and write it if unchanged since the read (retried
        on a concurrent change). ``change`` returning None writes nothing. None: no such record."""
        for _ in range(UPDATE_ATTEMPTS):
            stored = self.find(partition, row)
            if stored is None:
                return None
            changed = change(stored.value)
            if changed is None:
                return stored.value
            try:
                self.store.replace(changed, stored.table_etag)
                return changed
            except ConcurrentChange:
                continue
        raise ConcurrentChange()

    def delete(self, partition: str, row: str) -> None:
        if _safe_key(row):
            self.store.delete(partition, row)

    def delete_partition(self, partition: str) -> int:
        rows = [stored.value.id for stored in self.store.list(partition)]  # type: ignore[attr-defined]
        for row in rows:
            self.store.delete(partition, row)
        return len(rows)


def _safe_key(key: str) -> bool:
    """Whether ``key`` may be a RowKey (ids from URLs are checked before any table call)."""
    return bool(key) and len(key) <= 128 and not any(c in key for c in "/\\#?") and key.isprintable()


class CustomVisionStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.projects = RecordTable(storage, CV_PROJECTS_TABLE, ProjectRecord, lambda _: PROJECTS_PARTITION)
        self.tags = RecordTable(storage, CV_TAGS_TABLE, TagRecord, lambda r: r.project_id)
        self.images = RecordTable(storage, CV_IMAGES_TABLE, ImageRecord, lambda r: r.project_id)
        self.iterations = RecordTable(storage, CV_ITERATIONS_TABLE, IterationRecord, lambda r: r.project_id)
        self.predictions = RecordTable(storage, CV_PREDICTIONS_TABLE, PredictionRecord, lambda r: r.project_id)
        self._tag_table = storage.table(CV_TAGS_TABLE)

    @property
    def container(self):
        return self.storage.container(self.storage.settings.customvision_container)

    # --- tag names
    @staticmethod
    def _name_row(name: str) -> str:
        return hashlib.sha256(name.strip().casefold().encode()).hexdigest()

    def claim_tag_name(self, project_id: str, name: str, tag_id: str) -> None:
        """Raises AlreadyExists when another tag of the project has this name (case-insensitively)."""
        try:
            self._tag_table.create_entity({"PartitionKey": f"{project_id}~names", "RowKey": self._name_row(name),
                                           "tagId": tag_id})
        except ResourceExistsError:
            raise AlreadyExists() from None

    def release_tag_name(self, project_id: str, name: str, tag_id: str) -> None:
        try:
            entity = self._tag_table.get_entity(f"{project_id}~names", self._name_row(name))
        except ResourceNotFoundError:
            return
        if entity.get("tagId") == tag_id:
            self._tag_table.delete_entity(f"{project_id}~names", self._name_row(name))

    def delete_project_rows(self, project_id: str) -> None:
        """Every row a project owns, in every table (the project's own row last)."""
        self.tags.delete_partition(project_id)
        for entity in list(self._tag_table.query_entities("PartitionKey eq @p", parameters={"p": f"{project_id}~names"})):
            self._tag_table.delete_entity(entity["PartitionKey"], entity["RowKey"])
        self.images.delete_partition(project_id)
        self.iterations.delete_partition(project_id)
        self.predictions.delete_partition(project_id)
        self.projects.delete(PROJECTS_PARTITION, project_id)

    def delete_blobs(self, prefix: str) -> None:
        container = self.container
        for blob in container.list_blobs(name_starts_with=prefix):
            container.delete_blob(blob.name)
