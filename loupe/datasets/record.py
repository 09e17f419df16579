"""A registered dataset as Loupe stores it, and its wire shape (docs/wire-contract.md#datasets)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from pydantic import SecretStr

from loupe.datasets.validation import DatasetValidation
from loupe.enums import AnnotationKind, StorageAuthKind
from loupe.jobs.spec import DatasetSource
from loupe.storage.entities import (
    ENTITY_BUDGET_BYTES,
    TooLargeToStore,
    entity_bytes,
    get_json,
    parse_time,
    put_json,
    utc_now,
    wire_time,
)

PARTITION = "dataset"
DatasetSourceKind = Literal["api", "blob"]


def new_etag() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class DatasetRecord:
    name: str
    annotation_kind: AnnotationKind
    annotation_file_uris: list[str]
    # `authentication.kind` exactly as the client sent it (a string, or a one-element list from
    # samples 0.0.1-0.0.5); None when the client sent no authentication (docs/wire-contract.md#authentication-echo)
    auth_echo: Any = None
    auth_kind: StorageAuthKind | None = None
    sas_token: str | None = None  # never leaves Loupe's storage except towards the trainer
    custom_properties: dict[str, str] | None = None
    created: datetime = field(default_factory=utc_now)
    updated: datetime = field(default_factory=utc_now)
    etag: str = field(default_factory=new_etag)
    source: DatasetSourceKind = "api"
    # what validation found (shown to users as `validation`)
    validation: DatasetValidation | None = None
    # blob ETags of the annotation files when this dataset was validated (drop flow only)
    blob_etags: dict[str, str] | None = None

    @property
    def usable_for_training(self) -> bool:
        return self.validation is not None and self.validation.usable_for_training

    @property
    def usable_for_evaluation(self) -> bool:
        return self.validation is not None and self.validation.usable_for_evaluation

    def job_source(self) -> DatasetSource:
        """Where a job reads this dataset from, and how (the JobSpec's part)."""
        return DatasetSource(name=self.name, annotation_kind=self.annotation_kind,
                             annotation_file_uris=list(self.annotation_file_uris), auth_kind=self.auth_kind,
                             sas_token=SecretStr(self.sas_token) if self.sas_token else None)

    def changed(self, **changes: Any) -> "DatasetRecord":
        return replace(self, updated=utc_now(), etag=new_etag(), **changes)

    def wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "annotationKind": self.annotation_kind.value,
            "annotationFileUris": list(self.annotation_file_uris),
        }
        if self.auth_echo is not None:
            body["authentication"] = {"kind": self.auth_echo}
        if self.custom_properties is not None:
            body["customProperties"] = dict(self.custom_properties)
        body["createdDateTime"] = wire_time(self.created)
        body["updatedDateTime"] = wire_time(self.updated)
        body["eTag"] = self.etag
        if self.validation is not None:
            body["validation"] = self.validation.wire()
        return body

    def to_entity(self) -> dict[str, Any]:
        entity: dict[str, Any] = {
            "PartitionKey": PARTITION,
            "RowKey": self.name,
            "annotationKind": self.annotation_kind.value,
            "authKind": self.auth_kind.value if self.auth_kind else None,
            "sasToken": self.sas_token,
            "created": wire_time(self.created),
            "updated": wire_time(self.updated),
            "eTag": self.etag,
            "source": self.source,
        }
        put_json(entity, "annotationFileUris", self.annotation_file_uris)
        put_json(entity, "authEcho", self.auth_echo)
        put_json(entity, "customProperties", self.custom_properties)
        put_json(entity, "validation", self.validation.model_dump(mode="json") if self.validation else None)
        put_json(entity, "blobEtags", self.blob_etags)
        return {k: v for k, v in entity.items() if v is not None}

    def oversize_field(self) -> str | None:
        """The field that makes this record too large for one Table entity, or None when it fits.
        The limits of loupe.datasets.limits keep every record below it; this is the last check."""
        try:
            entity = self.to_entity()
        except TooLargeToStore as exc:
            return exc.key
        if entity_bytes(entity) <= ENTITY_BUDGET_BYTES:
            return None
        sizes: dict[str, int] = {}
        for key, value in entity.items():
            field_name = key.partition("__")[0]
            sizes[field_name] = sizes.get(field_name, 0) + (len(value) if isinstance(value, str) else 0)
        return max(sizes, key=sizes.__getitem__)

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> "DatasetRecord":
        auth = entity.get("authKind")
        return cls(
            name=entity["RowKey"],
            annotation_kind=AnnotationKind(entity["annotationKind"]),
            annotation_file_uris=get_json(entity, "annotationFileUris", []),
            auth_echo=get_json(entity, "authEcho"),
            auth_kind=StorageAuthKind(auth) if auth else None,
            sas_token=entity.get("sasToken"),
            custom_properties=get_json(entity, "customProperties"),
            created=parse_time(entity["created"]),
            updated=parse_time(entity["updated"]),
            etag=entity["eTag"],
            source=entity.get("source", "api"),
            validation=_validation(get_json(entity, "validation")),
            blob_etags=get_json(entity, "blobEtags"),
        )


def _validation(stored: dict[str, Any] | None) -> DatasetValidation | None:
    return DatasetValidation.model_validate(stored) if stored is not None else None
