"""Dataset request bodies (docs/wire-contract.md#datasets) and the resource-name rule (docs/wire-contract.md#resource-names)."""
from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from loupe.datasets.limits import MAX_ANNOTATION_FILES, MAX_CUSTOM_PROPERTIES
from loupe.enums import AnnotationKind, StorageAuthKind
from loupe.wire import WireModel

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
NAME_MAX_LENGTH = 255


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid dataset/model/evaluation name, or None."""
    if not name:
        return "the name is empty"
    if len(name) > NAME_MAX_LENGTH:
        return f"the name is {len(name)} characters long; at most {NAME_MAX_LENGTH} are allowed"
    if not NAME_PATTERN.fullmatch(name):
        return ("the name must start with a letter or digit and contain only letters, digits, '.', '_' and '-' "
                "(pattern ^[a-zA-Z0-9][a-zA-Z0-9._-]*$)")
    return None


class AuthenticationIn(WireModel):
    # A string, or a one-element list as samples 0.0.1-0.0.5 send it (docs/wire-contract.md#datasets)
    kind: str | list[str] | None = None
    sas_token: str | None = None

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: Any) -> Any:
        if value is None:
            return value
        items = value if isinstance(value, list) else [value]
        if len(items) != 1 or items[0] not in {k.value for k in StorageAuthKind}:
            raise ValueError("must be one of 'none', 'managedIdentity', 'sas'")
        return value

    @property
    def normalized_kind(self) -> StorageAuthKind | None:
        if self.kind is None:
            return None
        return StorageAuthKind(self.kind[0] if isinstance(self.kind, list) else self.kind)


class DatasetIn(WireModel):
    """PUT and PATCH body; PUT requires annotationKind and annotationFileUris."""

    name: str | None = None
    annotation_kind: AnnotationKind | None = None
    annotation_file_uris: list[str] | None = Field(default=None, min_length=1, max_length=MAX_ANNOTATION_FILES)
    authentication: AuthenticationIn | None = None
    custom_properties: dict[str, str] | None = Field(default=None, max_length=MAX_CUSTOM_PROPERTIES)

    @field_validator("authentication")
    @classmethod
    def _sas_needs_token(cls, value: AuthenticationIn | None) -> AuthenticationIn | None:
        if value is not None and value.normalized_kind is StorageAuthKind.SAS and not value.sas_token:
            raise ValueError("authentication.kind 'sas' needs authentication.sasToken")
        return value
