"""Registering, reading, updating and deleting datasets (the API flow).

Every write validates first and then stores one entity in one call, so a failed request leaves
nothing behind; concurrent writers are detected with ETags.
"""
from __future__ import annotations

import logging
from typing import Any

from loupe.datasets import limits
from loupe.datasets.record import PARTITION, DatasetRecord
from loupe.datasets.requests import DatasetIn, name_problem
from loupe.datasets.validation import DatasetValidation, DatasetValidator, Problem
from loupe.enums import AnnotationKind
from loupe.errors import ServiceError, bad_request, conflict, detail, not_found, precondition_failed, shown
from loupe.storage.blob_access import BlobReader
from loupe.storage.clients import Storage
from loupe.storage.dataset_files import AnnotationFileUnreadable
from loupe.storage.names import DATASETS_TABLE
from loupe.storage.table_store import AlreadyExists, ConcurrentChange, Stored, TableStore

log = logging.getLogger(__name__)


def check_name(name: str, what: str = "dataset") -> None:
    problem = name_problem(name)
    if problem:
        raise bad_request(f"Invalid {what} name '{shown(name)}': {problem}.", target="name", inner_code="BadArgument")


def check_limits(body: DatasetIn) -> None:
    """Sizes and characters of what the body would store (docs/wire-contract.md#limits), before any read."""
    limits.check_annotation_uris(body.annotation_file_uris)
    limits.check_custom_properties(body.custom_properties)
    limits.check_sas_token(body.authentication.sas_token if body.authentication else None)


def check_fits(record: DatasetRecord) -> None:
    """The last check before a write: the record fits one Table entity (the limits above make it)."""
    field = record.oversize_field()
    if field:
        raise bad_request(f"The dataset is too large to store: its {field} exceeds what a dataset record "
                          "may hold (docs: Limits).", target=field, inner_code="BadArgument")


def matches(if_match: str | None, etag: str) -> bool:
    if if_match is None:
        return True
    candidates = [c.strip() for c in if_match.split(",")]
    return any(c == "*" or c.removeprefix("W/").strip('"') == etag for c in candidates)


def invalid_dataset_error(validation: DatasetValidation) -> ServiceError:
    first = validation.errors[0] if validation.errors else Problem(code="", target=None,
                                                                   message="the dataset is not valid")
    more = f" (and {validation.error_count - 1} more problems)" if validation.error_count > 1 else ""
    return bad_request(
        f"The annotation file is not a valid COCO dataset: {first.target or ''}: {first.message}{more}",
        code="DatasetInvalidAnnotation",
        target=first.target,
        details=[detail(e.code, e.message, e.target) for e in validation.errors],
    )


class DatasetService:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.settings = storage.settings
        self.store: TableStore[DatasetRecord] = TableStore(
            storage.table(DATASETS_TABLE), DatasetRecord.to_entity, DatasetRecord.from_entity
        )

    # --- reads
    def find(self, name: str) -> Stored[DatasetRecord] | None:
        return self.store.get(PARTITION, name)

    def get(self, name: str) -> DatasetRecord:
        stored = self.find(name)
        if stored is None:
            raise not_found("Dataset", name)
        return stored.value

    def list(self) -> list[DatasetRecord]:
        return sorted((s.value for s in self.store.list(PARTITION)), key=lambda r: (r.created, r.name))

    # --- validation
    def validator(self, auth_kind, sas_token) -> DatasetValidator:
        return DatasetValidator(BlobReader(self.storage, auth_kind, sas_token), self.settings)

    def _validate(self, kind: AnnotationKind, uris: list[str], auth_kind, sas_token) -> DatasetValidation:
        try:
            validation = self.validator(auth_kind, sas_token).validate(uris, expected_kind=kind)
        except AnnotationFileUnreadable as exc:
            raise bad_request(exc.message, code="DatasetInvalidAnnotationUri", target=exc.target) from None
        if validation.status == "invalid":
            raise invalid_dataset_error(validation)
        return validation

    # --- writes
    def register(self, name: str, body: DatasetIn) -> DatasetRecord:
        check_name(name)
        self._check_body_name(name, body)
        missing = [f for f, v in (("annotationKind", body.annotation_kind),
                                  ("annotationFileUris", body.annotation_file_uris)) if v is None]
        if missing:
            raise bad_request(f"The request body is invalid: {missing[0]}: this property is required.",
                              target=missing[0], inner_code="BadArgument")
        check_limits(body)
        if self.find(name) is not None:
            raise conflict("DatasetAlreadyExists", f"Dataset '{name}' already exists.")
        auth = body.authentication
        auth_kind = auth.normalized_kind if auth else None
        sas = auth.sas_token if auth else None
        validation = self._validate(body.annotation_kind, body.annotation_file_uris, auth_kind, sas)
        record = DatasetRecord(
            name=name,
            annotation_kind=body.annotation_kind,
            annotation_file_uris=list(body.annotation_file_uris),
            auth_echo=auth.kind if auth else None,
            auth_kind=auth_kind,
            sas_token=sas,
            custom_properties=body.custom_properties,
            source="api",
            validation=validation,
        )
        check_fits(record)
        try:
            self.store.create(record)
        except AlreadyExists:
            raise conflict("DatasetAlreadyExists", f"Dataset '{name}' already exists.") from None
        log.info("dataset %s registered (%s, %d images)", name, validation.status, validation.image_count)
        return record

    def update(self, name: str, body: DatasetIn, if_match: str | None) -> DatasetRecord:
        check_name(name)
        self._check_body_name(name, body)
        check_limits(body)
        stored = self.find(name)
        if stored is None:
            raise not_found("Dataset", name)
        current = stored.value
        if not matches(if_match, current.etag):
            raise precondition_failed(f"Dataset '{name}' has ETag '{current.etag}', not the one in If-Match.")
        changes: dict[str, Any] = {}
        if body.annotation_kind is not None:
            changes["annotation_kind"] = body.annotation_kind
        if body.annotation_file_uris is not None:
            changes["annotation_file_uris"] = list(body.annotation_file_uris)
        if body.authentication is not None:
            changes.update(auth_echo=body.authentication.kind, auth_kind=body.authentication.normalized_kind,
                           sas_token=body.authentication.sas_token)
        if body.custom_properties is not None:
            changes["custom_properties"] = body.custom_properties
        revalidate = any(
            key in changes and changes[key] != getattr(current, key)
            for key in ("annotation_kind", "annotation_file_uris", "auth_kind", "sas_token")
        )
        if revalidate:
            validation = self._validate(
                changes.get("annotation_kind", current.annotation_kind),
                changes.get("annotation_file_uris", current.annotation_file_uris),
                changes.get("auth_kind", current.auth_kind),
                changes.get("sas_token", current.sas_token),
            )
            changes["validation"] = validation
            changes["source"] = "api"
        updated = current.changed(**changes)
        check_fits(updated)
        try:
            self.store.replace(updated, stored.table_etag)
        except ConcurrentChange:
            raise precondition_failed(f"Dataset '{name}' was changed by another request; read it and retry.") from None
        return updated

    def delete(self, name: str, if_match: str | None) -> None:
        check_name(name)
        stored = self.find(name)
        if stored is None:
            raise not_found("Dataset", name)
        if not matches(if_match, stored.value.etag):
            raise precondition_failed(f"Dataset '{name}' has ETag '{stored.value.etag}', not the one in If-Match.")
        try:
            self.store.delete(PARTITION, name, stored.table_etag)
        except ConcurrentChange:
            raise precondition_failed(f"Dataset '{name}' was changed by another request; read it and retry.") from None

    @staticmethod
    def _check_body_name(name: str, body: DatasetIn) -> None:
        if body.name is not None and body.name != name:
            raise bad_request(f"The body's name '{shown(body.name)}' differs from the name in the URL '{name}'.",
                              target="name", inner_code="BadArgument")
