"""Drop-a-file registration: ``datasets/<dataset-name>/<file>.json`` registers or re-validates
dataset ``<dataset-name>``.

Every ``.json`` directly inside the dataset's folder is one of its annotation files; images may
sit anywhere below the folder and are referenced by relative ``file_name``. The same handler
serves Event Grid deliveries on Azure and the local host's container watcher.

Idempotency: each delivered (blob, blob ETag) is claimed once in the blob-events table. A
redelivered or concurrent event for the same upload finds the claim and does nothing; a
re-uploaded file has a new ETag, so it validates again and gives the dataset a new eTag.
"""
from __future__ import annotations

import hashlib
import logging
import posixpath
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator, Literal
from urllib.parse import unquote, urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobPrefix, BlobProperties

from loupe.datasets.record import DatasetRecord
from loupe.datasets.requests import name_problem
from loupe.datasets.service import DatasetService
from loupe.datasets.validation import DatasetValidation, Problem
from loupe.enums import AnnotationKind
from loupe.storage.dataset_files import AnnotationFileUnreadable
from loupe.storage.entities import parse_time, utc_now, wire_time
from loupe.storage.names import BLOB_EVENTS_TABLE
from loupe.storage.table_store import AlreadyExists, ConcurrentChange

log = logging.getLogger(__name__)

# A claim older than this whose handler never finished (crash, host recycled) may be retaken.
STALE_CLAIM = timedelta(minutes=10)

MAX_REGISTER_ATTEMPTS = 5
Outcome = Literal["registered", "revalidated", "duplicate", "in-progress", "ignored", "conflict"]


@dataclass(frozen=True)
class DropResult:
    outcome: Outcome
    dataset: str | None = None
    detail: str = ""


def dataset_of(blob_name: str) -> tuple[str, str] | None:
    """(dataset name, file name) for ``<dataset>/<file>.json``, else None (images, nested files)."""
    parts = blob_name.split("/")
    if len(parts) != 2 or not parts[1].lower().endswith(".json") or not parts[0]:
        return None
    return parts[0], parts[1]


class DropRegistrar:
    def __init__(self, datasets: DatasetService) -> None:
        self.datasets = datasets
        self.storage = datasets.storage
        self.events = self.storage.table(BLOB_EVENTS_TABLE)
        self.container_name = self.storage.settings.datasets_container

    # --- claims
    def _claim(self, dataset: str, blob_name: str, blob_etag: str) -> str | None:
        """Claim the event; returns the claim's row key, or None when it is done or in progress."""
        row = hashlib.sha256(f"{blob_name}\n{blob_etag}".encode()).hexdigest()
        entity = {"PartitionKey": dataset, "RowKey": row, "blob": blob_name, "blobEtag": blob_etag,
                  "state": "processing", "claimed": wire_time(utc_now())}
        try:
            self.events.create_entity(entity)
            return row
        except ResourceExistsError:
            pass
        try:
            existing = self.events.get_entity(dataset, row)
        except ResourceNotFoundError:
            return None
        if existing.get("state") == "done" or utc_now() - parse_time(existing["claimed"]) < STALE_CLAIM:
            return None
        try:  # take over a stale claim, unless another handler just did
            self.events.update_entity(entity, etag=existing.metadata["etag"],
                                      match_condition=MatchConditions.IfNotModified)
            return row
        except (ResourceModifiedError, ResourceNotFoundError):
            return None

    def _finish(self, dataset: str, row: str, outcome: str) -> None:
        self.events.upsert_entity({"PartitionKey": dataset, "RowKey": row, "state": "done", "outcome": outcome,
                                   "finished": wire_time(utc_now())})

    # --- the handler
    def handle(self, blob_name: str, blob_etag: str | None = None) -> DropResult:
        """Handle a blob-created event for ``blob_name`` in the datasets container."""
        located = dataset_of(blob_name)
        if located is None:
            return DropResult("ignored", detail="not <dataset>/<file>.json")
        dataset, _ = located
        problem = name_problem(dataset)
        if problem:
            log.warning("ignoring %s: folder name is not a valid dataset name: %s", blob_name, problem)
            return DropResult("ignored", dataset, f"invalid dataset name: {problem}")
        container = self.storage.container(self.container_name)
        if blob_etag is None:
            try:
                blob_etag = container.get_blob_client(blob_name).get_blob_properties().etag
            except ResourceNotFoundError:
                return DropResult("ignored", dataset, "the blob no longer exists")
        row = self._claim(dataset, blob_name, blob_etag)
        if row is None:
            return DropResult("duplicate", dataset, "this upload was already handled (or is being handled)")
        try:
            result = self._register(dataset)
        except Exception:
            log.exception("registering dataset %s from %s failed", dataset, blob_name)
            # release the claim so a redelivery retries at once (a crashed host's claim goes stale)
            self.events.delete_entity(dataset, row)
            raise
        self._finish(dataset, row, result.outcome)
        return result

    def annotation_blobs(self, dataset: str | None = None) -> Iterator[BlobProperties]:
        """The annotation files (``<dataset>/*.json``) of one dataset folder, or of all of them.

        Lists by folder with a delimiter, so the images below each folder are never listed:
        the cost is one page per folder, not one entry per image."""
        container = self.storage.container(self.container_name)
        folders = [f"{dataset}/"] if dataset is not None else [
            item.name for item in container.walk_blobs(delimiter="/") if isinstance(item, BlobPrefix)]
        for folder in folders:
            for item in container.walk_blobs(name_starts_with=folder, delimiter="/"):
                if not isinstance(item, BlobPrefix) and dataset_of(item.name) is not None:
                    yield item

    def _annotation_files(self, dataset: str) -> dict[str, str]:
        """URL -> blob ETag of every .json directly in the dataset's folder, sorted by name."""
        container = self.storage.container(self.container_name)
        blobs = sorted(self.annotation_blobs(dataset), key=lambda b: b.name)
        return {container.get_blob_client(blob.name).url: blob.etag for blob in blobs}

    def _register(self, dataset: str) -> DropResult:
        # another file of the same dataset may be validated at the same moment: validate again
        # against the newest entity so the last writer saw every file - a bounded number of times
        # (the handler then releases its claim and the event's redelivery tries again)
        for _ in range(MAX_REGISTER_ATTEMPTS):
            result = self._register_once(dataset)
            if result is not None:
                return result
        raise ConcurrentChange(f"dataset {dataset} kept changing while being validated; "
                               f"gave up after {MAX_REGISTER_ATTEMPTS} attempts")

    def _register_once(self, dataset: str) -> DropResult | None:
        """The outcome, or None when a concurrent writer changed the dataset meanwhile."""
        files = self._annotation_files(dataset)
        if not files:
            return DropResult("ignored", dataset, "no annotation file left in the folder")
        uris = list(files)
        existing = self.datasets.find(dataset)
        if existing is not None and existing.value.source == "api" and existing.value.annotation_file_uris != uris:
            log.warning("dataset %s was registered through the API with other files; the drop is not applied", dataset)
            return DropResult("conflict", dataset, "a dataset of this name was registered through the API")
        validation = self._validate(uris)
        kind = validation.annotation_kind or (existing.value.annotation_kind if existing else AnnotationKind.CLASSIFICATION)
        if existing is None:
            record = DatasetRecord(name=dataset, annotation_kind=kind, annotation_file_uris=uris, source="blob",
                                   validation=validation, blob_etags=files)
            try:
                self.datasets.store.create(record)
                return DropResult("registered", dataset, validation.status)
            except AlreadyExists:
                existing = self.datasets.find(dataset)
                if existing is None:
                    raise
        updated = existing.value.changed(annotation_kind=kind, annotation_file_uris=uris, source="blob",
                                         validation=validation, blob_etags=files)
        try:
            self.datasets.store.replace(updated, existing.table_etag)
        except ConcurrentChange:
            return None
        return DropResult("revalidated", dataset, validation.status)

    def _validate(self, uris: list[str]) -> DatasetValidation:
        validator = self.datasets.validator(None, None)
        try:
            return validator.validate(uris, expected_kind=None)
        except AnnotationFileUnreadable as exc:
            # the file vanished or can't be read between the event and now
            return DatasetValidation(status="invalid", depth="structure", annotation_kind=None, multilabel=False,
                                     errors=[Problem(code="AnnotationFileUnreadable", target=exc.target,
                                                     message=exc.message)], error_count=1)


def blob_name_from_url(url: str, container: str) -> str | None:
    """The blob name inside ``container`` for an event's blob URL (Event Grid ``data.url``)."""
    path = unquote(urlsplit(url).path)
    marker = f"/{container}/"
    index = path.find(marker)
    return posixpath.normpath(path[index + len(marker):]) if index >= 0 else None
