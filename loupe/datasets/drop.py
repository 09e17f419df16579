"""Drop-a-file registration: ``datasets/<dataset-name>/<file>.json`` registers or re-validates
dataset ``<dataset-name>``. With the marker ``.loupe-convert.json`` in the folder, the folder is
a dataset in another layout (docs/formats.md#drop): converted into ``<dataset>/azure-coco/``
(loupe/datasets/conversion.py) on every event of the folder, and that output registered.

Every ``.json`` directly inside the dataset's folder is one of its annotation files; images may
sit anywhere below the folder and are referenced by relative ``file_name``. The same handler
serves Event Grid deliveries on Azure and the local host's container watcher.

Idempotency: each delivered (blob, blob ETag) is claimed once in the blob-events table. A
redelivered or concurrent event for the same upload finds the claim and does nothing; a
re-uploaded file has a new ETag, so it validates again and gives the dataset a new eTag.

Failures: files that break a rule or a limit (docs/wire-contract.md#limits) are a dataset entry
with status ``invalid`` naming the field, never an exception. Should handling still fail, a
transient storage error is retried by redelivery at most MAX_TRANSIENT_ATTEMPTS times per upload;
anything else ends the claim at once (``done``, outcome ``failed`` and the reason), so a poll loop
never re-validates the same upload over and over.
"""
from __future__ import annotations

import hashlib
import logging
import posixpath
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Iterator, Literal
from urllib.parse import unquote, urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobPrefix, BlobProperties

from loupe.datasets import limits
from loupe.datasets.conversion import MARKER, convert_dropped
from loupe.datasets.record import DatasetRecord
from loupe.datasets.requests import name_problem
from loupe.datasets.service import DatasetService
from loupe.datasets.validation import DatasetValidation, Problem
from loupe.enums import AnnotationKind
from loupe.errors import ServiceError, shown
from loupe.formats import FormatError, Limits
from loupe.storage.dataset_files import AnnotationFileUnreadable
from loupe.storage.entities import parse_time, utc_now, wire_time
from loupe.storage.names import BLOB_EVENTS_TABLE
from loupe.storage.table_store import AlreadyExists, ConcurrentChange

log = logging.getLogger(__name__)

# A claim older than this whose handler never finished (crash, host recycled) may be retaken.
STALE_CLAIM = timedelta(minutes=10)

MAX_REGISTER_ATTEMPTS = 5
# deliveries of one upload (blob + ETag) that may fail on a transient storage error before the
# failure is recorded for good; any other error is recorded at once (a retry would fail the same way)
MAX_TRANSIENT_ATTEMPTS = 5
Outcome = Literal["registered", "revalidated", "duplicate", "in-progress", "ignored", "conflict", "failed"]


def _transient(exc: Exception) -> bool:
    """Whether retrying the same upload may succeed: storage unreachable, throttled or failing."""
    if isinstance(exc, (ConnectionError, TimeoutError, ServiceRequestError, ServiceResponseError, ConcurrentChange)):
        return True
    return isinstance(exc, HttpResponseError) and exc.status_code in (408, 429, 500, 502, 503, 504)


def _invalid(code: str, target: str, message: str) -> DatasetValidation:
    """A validation that records why the dropped files could not be validated at all."""
    return DatasetValidation(status="invalid", depth="structure", annotation_kind=None, multilabel=False,
                             errors=[Problem(code=code, target=target, message=message)], error_count=1)


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
    def _claim(self, dataset: str, blob_name: str, blob_etag: str) -> tuple[str, int] | None:
        """Claim the event; returns the claim's row key and attempt number, or None when it is done
        or in progress. A claim released after a transient failure (state ``retry``) or gone stale
        is taken over, counting the attempt."""
        row = hashlib.sha256(f"{blob_name}\n{blob_etag}".encode()).hexdigest()
        entity = {"PartitionKey": dataset, "RowKey": row, "blob": blob_name, "blobEtag": blob_etag,
                  "state": "processing", "claimed": wire_time(utc_now()), "attempts": 1}
        try:
            self.events.create_entity(entity)
            return row, 1
        except ResourceExistsError:
            pass
        try:
            existing = self.events.get_entity(dataset, row)
        except ResourceNotFoundError:
            return None
        state = existing.get("state")
        if state == "done" or (state != "retry" and utc_now() - parse_time(existing["claimed"]) < STALE_CLAIM):
            return None
        entity["attempts"] = int(existing.get("attempts") or 1) + 1
        try:  # take the claim over, unless another handler just did
            self.events.update_entity(entity, etag=existing.metadata["etag"],
                                      match_condition=MatchConditions.IfNotModified)
            return row, entity["attempts"]
        except (ResourceModifiedError, ResourceNotFoundError):
            return None

    def _finish(self, dataset: str, row: str, outcome: str, reason: str | None = None) -> None:
        entity = {"PartitionKey": dataset, "RowKey": row, "state": "done", "outcome": outcome,
                  "finished": wire_time(utc_now())}
        if reason:
            entity["reason"] = reason
        self.events.upsert_entity(entity)

    def _failed(self, dataset: str, blob_name: str, row: str, attempt: int, exc: Exception) -> DropResult:
        """Records a failed handling; re-raises a transient error while attempts are left, so the
        event's redelivery (the watcher's next poll, Event Grid's retry) tries again."""
        reason = f"{type(exc).__name__}: {shown(str(exc))}"
        if _transient(exc) and attempt < MAX_TRANSIENT_ATTEMPTS:
            log.warning("registering dataset %s from %s failed (attempt %d of %d; it will be retried): %s",
                        dataset, blob_name, attempt, MAX_TRANSIENT_ATTEMPTS, reason)
            self.events.upsert_entity({"PartitionKey": dataset, "RowKey": row, "state": "retry", "reason": reason})
            raise exc
        if _transient(exc):
            log.error("registering dataset %s from %s failed %d times; giving up: %s",
                      dataset, blob_name, attempt, reason)
        else:  # a bug or an unexpected answer: one traceback, once per upload
            log.error("registering dataset %s from %s failed: %s", dataset, blob_name, reason, exc_info=exc)
        self._finish(dataset, row, "failed", reason)
        return DropResult("failed", dataset, reason)

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
        claim = self._claim(dataset, blob_name, blob_etag)
        if claim is None:
            return DropResult("duplicate", dataset, "this upload was already handled (or is being handled)")
        row, attempt = claim
        try:
            result = self._register(dataset)
        except Exception as exc:
            return self._failed(dataset, blob_name, row, attempt, exc)
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

    def _converted(self, dataset: str) -> tuple[dict[str, str], DatasetValidation | None] | None:
        """With the marker in the folder (docs/formats.md#drop): the converted annotation files, or
        the marker and a validation naming why the folder cannot be converted; else None."""
        container = self.storage.container(self.container_name)
        marker = container.get_blob_client(f"{dataset}/{MARKER}")
        if not marker.exists():
            return None
        existing = self.datasets.find(dataset)
        if existing is not None and existing.value.source == "api":
            return None  # never convert into the folder of a dataset the API owns: "conflict" follows
        try:
            return convert_dropped(container, dataset, Limits()), None
        except FormatError as exc:
            return ({marker.url: marker.get_blob_properties().etag},
                    _invalid("DatasetConversionFailed", shown(exc.place), shown(str(exc), 2000)))

    def _register(self, dataset: str) -> DropResult:
        converted = self._converted(dataset)
        # another file of the same dataset may be validated at the same moment: validate again
        # against the newest entity so the last writer saw every file - a bounded number of times
        # (the handler then releases its claim and the event's redelivery tries again)
        for _ in range(MAX_REGISTER_ATTEMPTS):
            result = self._register_once(dataset, converted)
            if result is not None:
                return result
        raise ConcurrentChange(f"dataset {dataset} kept changing while being validated; "
                               f"gave up after {MAX_REGISTER_ATTEMPTS} attempts")

    def _register_once(self, dataset: str, converted: tuple[dict[str, str], DatasetValidation | None] | None = None
                       ) -> DropResult | None:
        """The outcome, or None when a concurrent writer changed the dataset meanwhile."""
        files, failure = converted or (self._annotation_files(dataset), None)
        if not files:
            return DropResult("ignored", dataset, "no annotation file left in the folder")
        uris = list(files)
        existing = self.datasets.find(dataset)
        if existing is not None and existing.value.source == "api" and existing.value.annotation_file_uris != uris:
            log.warning("dataset %s was registered through the API with other files; the drop is not applied", dataset)
            return DropResult("conflict", dataset, "a dataset of this name was registered through the API")
        if failure is not None:
            validation = failure
        elif len(uris) > limits.MAX_ANNOTATION_FILES:  # docs/wire-contract.md#limits; the first ones are kept
            validation = _invalid("TooManyAnnotationFiles", "annotationFileUris",
                                  f"the folder holds {len(uris)} annotation files (.json); at most "
                                  f"{limits.MAX_ANNOTATION_FILES} are allowed")
            uris = uris[: limits.MAX_ANNOTATION_FILES]
            files = {uri: files[uri] for uri in uris}
        else:
            validation = self._validate(uris)
        kind = validation.annotation_kind or (existing.value.annotation_kind if existing else AnnotationKind.CLASSIFICATION)
        if existing is None:
            record = _fitted(DatasetRecord(name=dataset, annotation_kind=kind, annotation_file_uris=uris,
                                           source="blob", validation=validation, blob_etags=files))
            try:
                self.datasets.store.create(record)
                return DropResult("registered", dataset, validation.status)
            except AlreadyExists:
                existing = self.datasets.find(dataset)
                if existing is None:
                    raise
        updated = _fitted(existing.value.changed(annotation_kind=kind, annotation_file_uris=uris, source="blob",
                                                 validation=validation, blob_etags=files))
        try:
            self.datasets.store.replace(updated, existing.table_etag)
        except ConcurrentChange:
            return None
        return DropResult("revalidated", dataset, validation.status)

    def _validate(self, uris: list[str]) -> DatasetValidation:
        try:
            limits.check_annotation_uris(uris)
        except ServiceError as exc:
            return _invalid("InvalidAnnotationUri", exc.target or "annotationFileUris", exc.message)
        validator = self.datasets.validator(None, None)
        try:
            return validator.validate(uris, expected_kind=None)
        except AnnotationFileUnreadable as exc:
            # the file vanished or can't be read between the event and now, or is past a limit
            return _invalid("AnnotationFileUnreadable", exc.target, exc.message)


def _fitted(record: DatasetRecord) -> DatasetRecord:
    """The record, or, should it not fit one entity after all, the record with a validation saying so."""
    field = record.oversize_field()
    if field is None:
        return record
    return replace(record, validation=_invalid("DatasetTooLarge", field,
                                               f"the dataset's {field} is too large to store"))


def blob_name_from_url(url: str, container: str) -> str | None:
    """The blob name inside ``container`` for an event's blob URL (Event Grid ``data.url``)."""
    path = unquote(urlsplit(url).path)
    marker = f"/{container}/"
    index = path.find(marker)
    return posixpath.normpath(path[index + len(marker):]) if index >= 0 else None
