"""Helpers for Table entities: JSON-valued properties that may exceed one property's size limit,
and timestamps in the wire format."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

# A Table string property holds at most 64 KiB of UTF-16 (32K code units; a character outside the
# BMP takes two); an entity holds 1 MiB in all, property names included. Larger JSON values are
# split over numbered properties of at most _CHUNK_CHARS characters, which fit even when every
# character takes two code units.
_CHUNK_CHARS = 16_000
ENTITY_MAX_BYTES = 1024 * 1024
# what a record may use, leaving room for the service's own per-entity overhead (PartitionKey,
# RowKey, Timestamp, type annotations)
ENTITY_BUDGET_BYTES = ENTITY_MAX_BYTES - 32 * 1024


class TooLargeToStore(ValueError):
    def __init__(self, key: str, chars: int) -> None:
        super().__init__(f"{key} is too large to store ({chars} characters)")
        self.key = key


def utf16_bytes(text: str) -> int:
    """The bytes a string takes in a Table entity (UTF-16)."""
    return len(text.encode("utf-16-le", "surrogatepass"))


def entity_bytes(entity: dict[str, Any]) -> int:
    """An upper estimate of an entity's stored size: names and strings in UTF-16, other values 8 bytes,
    and 8 bytes of framing per property (Azure's formula for entity size)."""
    total = 4
    for name, value in entity.items():
        total += 8 + utf16_bytes(name) + (4 + utf16_bytes(value) if isinstance(value, str) else 8)
    return total


def json_bytes(value: Any) -> int:
    """The stored size of ``value`` as put_json writes it (without per-chunk framing)."""
    return utf16_bytes(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def put_json(entity: dict[str, Any], key: str, value: Any) -> None:
    """Store ``value`` as JSON under ``key`` (split into ``key``, ``key__1``, ... when large)."""
    for name in [k for k in entity if k == key or k.startswith(f"{key}__")]:
        del entity[name]
    if value is None:
        return
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if utf16_bytes(text) > ENTITY_MAX_BYTES:
        raise TooLargeToStore(key, len(text))
    chunks = [text[i : i + _CHUNK_CHARS] for i in range(0, len(text), _CHUNK_CHARS)] or [""]
    entity[key] = chunks[0]
    for index, chunk in enumerate(chunks[1:], start=1):
        entity[f"{key}__{index}"] = chunk


def get_json(entity: dict[str, Any], key: str, default: Any = None) -> Any:
    if key not in entity or entity[key] is None:
        return default
    parts = [entity[key]]
    index = 1
    while f"{key}__{index}" in entity:
        parts.append(entity[f"{key}__{index}"])
        index += 1
    return json.loads("".join(parts))


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def wire_time(moment: datetime) -> str:
    """ISO 8601 with milliseconds and a Z, as the retired service wrote: 2023-01-13T20:46:21.210Z"""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
