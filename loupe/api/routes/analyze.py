"""``POST /computervision/imageanalysis:analyze?model-name=`` (docs/wire-contract.md#analyze, #azure-ai-vision-imageanalysis, #client-quirks)."""
from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from loupe.api.multipart import MultipartError, first_file
from loupe.api.openapi import NAME_SCHEMA, errors, query
from loupe.datasets.service import check_name
from loupe.errors import ServiceError, bad_request, shown
from loupe.imaging import PREDICTION_LIMITS
from loupe.inference import InferenceError, analyze_result, fetch_image
from loupe.services import Services

router = APIRouter(prefix="/computervision", tags=["analyze"])

MAX_BODY_BYTES = PREDICTION_LIMITS.max_bytes + 64 * 1024  # the image plus multipart framing
# a {"url": ...} body is small; its own limit, and its own message (it is not an image)
MAX_JSON_BYTES = 16 * 1024
MAX_URL_LENGTH = 8 * 1024
IMAGE_TYPES = ("application/octet-stream",)

_IMAGE = {"type": "string", "format": "binary", "maxLength": PREDICTION_LIMITS.max_bytes}
OPENAPI: dict[str, Any] = {
    "parameters": [
        query("model-name", NAME_SCHEMA, "The custom model to run (docs/wire-contract.md#resource-names).",
              required=True),
        query("features", {"type": "string"}, "Standard-model features; ignored next to model-name (Loupe "
              "serves custom models only; an empty value counts as absent)."),
    ],
    "requestBody": {"required": True, "description": "The image (JPEG, PNG, BMP or GIF, at most "
                    f"{PREDICTION_LIMITS.max_bytes} bytes), or a JSON object with its URL.", "content": {
        "image/*": {"schema": _IMAGE},
        "application/octet-stream": {"schema": _IMAGE},
        "multipart/form-data": {"schema": {"type": "object", "properties": {"file": _IMAGE}, "required": ["file"]}},
        "application/json": {"schema": {"type": "object", "required": ["url"], "properties": {
            "url": {"type": "string", "minLength": 1, "maxLength": MAX_URL_LENGTH,
                    "description": "https URL of the image; Loupe fetches it (no private addresses)."}}}},
    }},
}


def _as_service_error(exc: InferenceError) -> ServiceError:
    return ServiceError(exc.status, exc.code, exc.message, inner_code=exc.inner_code)


def _too_large(limit: int, is_json: bool) -> ServiceError:
    if is_json:
        return bad_request(f'The JSON body is larger than {limit} bytes; it holds only {{"url": "<image URL>"}}.',
                           inner_code="BadArgument")
    return bad_request(f"The image is larger than {PREDICTION_LIMITS.max_bytes} bytes.", inner_code="InvalidImageSize")


async def _read_body(request: Request, limit: int, is_json: bool) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, is_json)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise _too_large(limit, is_json)
    return bytes(body)


def _json_url(raw: bytes) -> str:
    try:
        url = json.loads(raw).get("url")
    except (ValueError, AttributeError, RecursionError):
        url = None
    if not isinstance(url, str) or not url:
        raise bad_request('The JSON body must be {"url": "<image URL>"}.', inner_code="BadArgument", target="url")
    if len(url) > MAX_URL_LENGTH:
        raise bad_request(f"The image URL is {len(url)} characters long; at most {MAX_URL_LENGTH} are allowed.",
                          inner_code="BadArgument", target="url")
    return url


def _image_from(content_type: str, body: bytes) -> bytes:
    media = content_type.split(";", 1)[0].strip().lower()
    if media.startswith("image/") or media in IMAGE_TYPES:
        data = body
    elif media == "multipart/form-data":
        try:
            data = first_file(content_type, body)
        except MultipartError as exc:
            raise bad_request(f"The multipart body is not usable: {exc}.", inner_code="BadArgument") from None
    else:
        raise bad_request(f"Content-Type '{shown(content_type)}' is not supported; send the image as image/*, "
                          "application/octet-stream or multipart/form-data, or application/json with a url.",
                          inner_code="InvalidImageFormat")
    if len(data) > PREDICTION_LIMITS.max_bytes:
        raise _too_large(PREDICTION_LIMITS.max_bytes, False)
    return data


async def _image_bytes(request: Request, services: Services, model_name: str) -> bytes:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        return _image_from(content_type, await _read_body(request, MAX_BODY_BYTES, False))
    url = _json_url(await _read_body(request, MAX_JSON_BYTES, True))
    settings = services.settings
    try:
        # an unknown model is a 404 before Loupe fetches anything on the caller's behalf
        await run_in_threadpool(services.predictors.get, model_name)
        return await run_in_threadpool(fetch_image, url, allow_http=settings.allow_http_image_urls,
                                       allow_loopback=settings.allow_loopback_image_urls)
    except InferenceError as exc:
        raise _as_service_error(exc) from None


@router.post("/imageanalysis:analyze", summary="Analyze an image with a custom model (model-name)",
             openapi_extra=OPENAPI, responses=errors(404))
async def analyze(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    model_name = request.query_params.get("model-name") or None
    features = request.query_params.get("features") or None  # an empty features= counts as absent
    if model_name is None:
        if features is None:
            raise bad_request("Either 'features' or 'model-name' needs to be specified in the query parameter.",
                              inner_code="BadArgument")
        raise bad_request(f"The visual features '{shown(features)}' of the standard model are not served by "
                          "Loupe; pass model-name to use a custom model.", inner_code="NotSupportedVisualFeature")
    # the name rule of /models, and its 400 (docs/wire-contract.md#resource-names)
    check_name(model_name, "model")
    image = await _image_bytes(request, services, model_name)
    try:
        # one hop to the thread pool: loading (cached) and running the model both block
        result = await run_in_threadpool(lambda: analyze_result(services.predictors.get(model_name), image))
    except InferenceError as exc:
        raise _as_service_error(exc) from None
    return JSONResponse(result, status_code=200)
