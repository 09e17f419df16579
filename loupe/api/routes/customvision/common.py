"""What every Custom Vision route shares: the version check, query parsing (comma-separated lists,
booleans, bounded integers), bounded bodies, image bytes from multipart or octet-stream, and
answers with exactly the documented status (docs/customvision.md#wire)."""
from __future__ import annotations

import json
from typing import Any

from fastapi import Path, Request
from fastapi.responses import JSONResponse, Response

from loupe.api.multipart import MultipartError, parse_parts
from loupe.customvision.errors import CustomVisionError, bad_request, cv_error
from loupe.errors import shown
from loupe.services import Services

# every version the SDKs and REST quickstarts use; the path is matched case-insensitively
# (loupe.api.middleware lower-cases the version and the training/prediction segment)
VERSIONS = ("v3.0", "v3.1", "v3.2", "v3.3", "v3.4-preview")
MAX_JSON_BYTES = 1024 * 1024


def check_version(version: str = Path(description="API version: v3.0 to v3.4-preview")) -> str:
    if version not in VERSIONS:
        raise cv_error(404, "NotFound", f"API version '{shown(version, 32)}' is not served; use one of "
                       f"{', '.join(VERSIONS)}.")
    return version


def services(request: Request) -> Services:
    return request.app.state.services


def answer(body: Any, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status)


def no_content() -> Response:
    return Response(status_code=204)


# --- query strings
def query(request: Request, name: str) -> str | None:
    """A query parameter by name, case-insensitively (REST callers vary the case)."""
    wanted = name.lower()
    for key, value in request.query_params.multi_items():
        if key.lower() == wanted:
            return value
    return None


def query_list(request: Request, name: str, limit: int = 256) -> list[str]:
    """A comma-separated list (msrest joins lists with ','); repeated parameters are joined too."""
    wanted = name.lower()
    items: list[str] = []
    for key, value in request.query_params.multi_items():
        if key.lower() == wanted:
            items.extend(part.strip() for part in value.split(",") if part.strip())
    if len(items) > limit:
        raise bad_request("BadRequestInvalidIds", f"{name} holds {len(items)} values; at most {limit} are allowed.")
    return items


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    value = query(request, name)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise bad_request("BadRequestInvalid", f"{name} must be true or false, not '{shown(value, 32)}'.")


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    value = query(request, name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise bad_request("BadRequestInvalid", f"{name} must be an integer, not '{shown(value, 32)}'.") from None
    if not low <= number <= high:
        raise bad_request("BadRequestInvalid", f"{name} is {number}; it must be between {low} and {high}.")
    return number


def query_float(request: Request, name: str, default: float, low: float = 0.0, high: float = 1.0) -> float:
    value = query(request, name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise bad_request("BadRequestInvalid", f"{name} must be a number, not '{shown(value, 32)}'.") from None
    if not low <= number <= high:
        raise bad_request("BadRequestInvalid", f"{name} is {number}; it must be between {low} and {high}.")
    return number


def page(items: list, request: Request) -> list:
    from loupe.customvision.limits import DEFAULT_TAKE, MAX_TAKE

    take = query_int(request, "take", DEFAULT_TAKE, 0, MAX_TAKE)
    skip = query_int(request, "skip", 0, 0, 10**9)
    return items[skip:skip + take]


# --- bodies
async def read_body(request: Request, limit: int, what: str = "The request body") -> bytes:
    declared = request.headers.get("content-length", "")
    too_large = CustomVisionError(413, "BadRequestImageSizeBytes" if "image" in what.lower() else "BadRequest",
                                  f"{what} is larger than {limit} bytes.")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise too_large
    return bytes(body)


async def json_body(request: Request, limit: int = MAX_JSON_BYTES, required: bool = True) -> Any:
    raw = await read_body(request, limit)
    if not raw.strip():
        if required:
            raise bad_request("BadRequestRequiredParamIsNull", "The request body is empty; a JSON object is expected.")
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise bad_request("BadRequest", f"The request body is not valid JSON: {shown(str(exc), 120)}.") from None


def json_object(value: Any, what: str = "The request body") -> dict:
    if not isinstance(value, dict):
        raise bad_request("BadRequest", f"{what} must be a JSON object.")
    return value


def images_from_body(content_type: str, body: bytes, max_images: int) -> list[tuple[bytes, str | None]]:
    """(bytes, file name) of each image in a multipart body (every part with data, whatever its
    name; a part without a filename is an image too, as the SDK sends bytes), or the raw body."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        try:
            parts = parse_parts(content_type, body, max_parts=max_images + 1)
        except MultipartError as exc:
            raise bad_request("BadRequestImageBatch" if "more than" in str(exc) else "BadRequestImageStream",
                              f"The multipart body is not usable: {exc}.") from None
        found = [(bytes(p.data), _filename(p.headers.get("content-disposition", ""))) for p in parts if p.data]
        if not found:
            raise bad_request("BadRequestImageStream", "The multipart body holds no image part.")
        return found
    if not body:
        raise bad_request("BadRequestImageStream", "The request body is empty; send the image bytes.")
    return [(body, None)]


def _filename(disposition: str) -> str | None:
    from python_multipart.multipart import parse_options_header

    _, options = parse_options_header(disposition)
    value = options.get(b"filename")
    return value.decode("utf-8", "replace") if value else None
