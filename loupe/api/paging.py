"""``skip``/``top`` paging with ``nextLink`` (docs/wire-contract.md#paging: top <= 30)."""
from __future__ import annotations

from typing import Any, Callable, Sequence, TypeVar

from fastapi import Request

from loupe.errors import bad_request

T = TypeVar("T")
MAX_TOP = 30

# the query parameters ``page`` reads, for the OpenAPI document (openapi_extra of the list routes)
PAGING = {"parameters": [
    {"name": "skip", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0, "default": 0},
     "description": "How many items to skip."},
    {"name": "top", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_TOP, "default": MAX_TOP},
     "description": f"How many items to return, at most {MAX_TOP}."},
]}


def _int_param(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"'{name}' must be an integer, not '{raw[:40]}'.", target=name, inner_code="BadArgument") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise bad_request(f"'{name}' must be {bounds}; {value} was given.", target=name, inner_code="BadArgument")
    return value


def page(request: Request, items: Sequence[T], render: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    skip = _int_param(request, "skip", 0, 0, None)
    top = _int_param(request, "top", MAX_TOP, 1, MAX_TOP)
    body: dict[str, Any] = {"value": [render(item) for item in items[skip : skip + top]]}
    if skip + top < len(items):
        body["nextLink"] = str(request.url.include_query_params(skip=skip + top, top=top))
    return body
