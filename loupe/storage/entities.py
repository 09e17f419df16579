"""Helpers for Table entities: JSON-valued properties that may exceed one property's size limit,
and timestamps in the wire format."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

# A Table string property holds at most 64 KiB of UTF-16, i.e. 32K characters; an entity holds
# 1 MiB in all. Larger JSON values are split over numbered properties.
_CHUNK_CHARS = 30_000
_MAX_CHUNKS = 30


def put_json(entity: dict[str, Any], key: str, value: Any) -> None:
    """Store ``value`` as JSON under ``key`` (split into ``key``, ``key__1``, ... when large)."""
    for name in [k for k in entity if k == key or k.startswith(f"{key}__")]:
        del entity[name]
    if value is None:
        return
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    chunks = [text[i : i + _CHUNK_CHARS] for i in range(0, len(text), _CHUNK_CHARS)] or [""]
    if len(chunks) > _MAX_CHUNKS:
        raise ValueError(f"{key} is too large to store ({len(text)} characters)")
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
