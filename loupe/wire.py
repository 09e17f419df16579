"""Request/response model bases: camelCase on the wire, request keys matched case-insensitively.

The samples client sends PascalCase (``AnnotationKind``, ``TrainingParameters``), the docs and
IRIS send camelCase (docs/wire-contract.md#request-bodies, #case-insensitive-keys): both must reach the same field.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _match_keys_case_insensitively(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        canonical: dict[str, str] = {}
        for name, field in cls.model_fields.items():
            alias = field.alias or name
            canonical[alias.lower()] = alias
            canonical[name.lower()] = alias
        matched: dict[str, Any] = {}
        for key, value in data.items():
            target = canonical.get(key.lower(), key) if isinstance(key, str) else key
            if target in matched:
                raise ValueError(f"'{key}' is given twice (property names are case-insensitive)")
            matched[target] = value
        return matched

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
