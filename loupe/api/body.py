"""Reading JSON request bodies into wire models, with errors that say where and what."""
from __future__ import annotations

import json
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from loupe.errors import ServiceError, bad_request, detail

M = TypeVar("M", bound=BaseModel)

MAX_JSON_BODY_BYTES = 1024 * 1024
_JSON_TYPES = ("application/json", "text/json")


def _is_json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return not media or media in _JSON_TYPES or media.endswith("+json")


def json_path(loc: tuple) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in ("function-after", "function-before", "function-wrap") and not str(part).startswith(
            ("function-", "union[")
        ):
            path += f".{part}" if path else str(part)
    return path


def validation_error(exc: ValidationError, *, prefix: str = "") -> ServiceError:
    return errors_to_bad_request(exc.errors(include_url=False), prefix=prefix)


def errors_to_bad_request(errors: list[dict], *, prefix: str = "") -> ServiceError:
    """pydantic/FastAPI error dicts -> one 400 naming each bad place."""
    items = []
    for error in errors:
        target = json_path(tuple(error["loc"]))
        if prefix:
            target = f"{prefix}.{target}" if target else prefix
        message = error["msg"]
        if error["type"] == "missing":
            message = "this property is required"
        items.append(detail("BadArgument", f"{target or 'body'}: {message}", target or None))
    first = items[0]
    summary = first["message"] if len(items) == 1 else f"{first['message']} (and {len(items) - 1} more problems)"
    return bad_request(f"The request body is invalid: {summary}", target=first.get("target"), details=items,
                       inner_code="BadArgument")


async def read_json_body(request: Request, model: type[M]) -> M:
    content_type = request.headers.get("content-type", "")
    if not _is_json_media_type(content_type):
        raise ServiceError(415, "InvalidRequest", f"Content-Type '{content_type}' is not supported; send application/json.",
                       inner_code="UnsupportedMediaType")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_JSON_BODY_BYTES:
        raise bad_request(f"The request body is larger than {MAX_JSON_BODY_BYTES} bytes.", inner_code="BadArgument")
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > MAX_JSON_BODY_BYTES:
            raise bad_request(f"The request body is larger than {MAX_JSON_BODY_BYTES} bytes.", inner_code="BadArgument")
    if not raw.strip():
        raise bad_request("The request body is empty; a JSON object is expected.", inner_code="BadArgument")
    try:
        data = json.loads(bytes(raw).decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise bad_request(f"The request body is not UTF-8 (byte {exc.start}).", inner_code="BadArgument") from None
    except json.JSONDecodeError as exc:
        raise bad_request(f"The request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.",
                          inner_code="BadArgument") from None
    except RecursionError:
        raise bad_request("The request body is nested too deeply.", inner_code="BadArgument") from None
    if not isinstance(data, dict):
        raise bad_request(f"The request body must be a JSON object, not {type(data).__name__}.", inner_code="BadArgument")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None
    except RecursionError:
        raise bad_request("The request body is nested too deeply.", inner_code="BadArgument") from None
