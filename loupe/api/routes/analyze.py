"""``POST /computervision/imageanalysis:analyze?model-name=`` (docs/wire-contract.md#analyze, #azure-ai-vision-imageanalysis, #client-quirks)."""
from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from loupe.api.multipart import MultipartError, first_file
from loupe.errors import ServiceError, bad_request
from loupe.imaging import PREDICTION_LIMITS
from loupe.inference import InferenceError, analyze_result, fetch_image
from loupe.services import Services

router = APIRouter(prefix="/computervision", tags=["analyze"])

MAX_BODY_BYTES = PREDICTION_LIMITS.max_bytes + 64 * 1024  # the image plus multipart framing
MAX_JSON_BYTES = 16 * 1024
IMAGE_TYPES = ("application/octet-stream",)


def _as_service_error(exc: InferenceError) -> ServiceError:
    return ServiceError(exc.status, exc.code, exc.message, inner_code=exc.inner_code)


async def _read_body(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise bad_request(f"The image is larger than {PREDICTION_LIMITS.max_bytes} bytes.",
                              inner_code="InvalidImageSize")
    return bytes(body)


async def _image_bytes(request: Request, services: Services) -> bytes:
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json":
        raw = await _read_body(request, MAX_JSON_BYTES)
        try:
            url = json.loads(raw).get("url")
        except (ValueError, AttributeError, RecursionError):
            url = None
        if not isinstance(url, str) or not url:
            raise bad_request('The JSON body must be {"url": "<image URL>"}.', inner_code="BadArgument", target="url")
        settings = services.settings
        try:
            return await run_in_threadpool(fetch_image, url, allow_http=settings.allow_http_image_urls,
                                           allow_loopback=settings.allow_loopback_image_urls)
        except InferenceError as exc:
            raise _as_service_error(exc) from None
    body = await _read_body(request, MAX_BODY_BYTES)
    if media.startswith("image/") or media in IMAGE_TYPES:
        data = body
    elif media == "multipart/form-data":
        try:
            data = first_file(content_type, body)
        except MultipartError as exc:
            raise bad_request(f"The multipart body is not usable: {exc}.", inner_code="BadArgument") from None
    else:
        raise bad_request(f"Content-Type '{content_type[:100]}' is not supported; send the image as image/*, "
                          "application/octet-stream or multipart/form-data, or application/json with a url.",
                          inner_code="InvalidImageFormat")
    if len(data) > PREDICTION_LIMITS.max_bytes:
        raise bad_request(f"The image is larger than {PREDICTION_LIMITS.max_bytes} bytes.",
                          inner_code="InvalidImageSize")
    return data


@router.post("/imageanalysis:analyze", summary="Analyze an image with a custom model (model-name)")
async def analyze(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    model_name = request.query_params.get("model-name") or None
    features = request.query_params.get("features") or None  # an empty features= counts as absent
    if model_name is None:
        if features is None:
            raise bad_request("Either 'features' or 'model-name' needs to be specified in the query parameter.",
                              inner_code="BadArgument")
        raise bad_request(f"The visual features '{features[:100]}' of the standard model are not served by Loupe; "
                          "pass model-name to use a custom model.", inner_code="NotSupportedVisualFeature")
    image = await _image_bytes(request, services)
    try:
        # one hop to the thread pool: loading (cached) and running the model both block
        result = await run_in_threadpool(lambda: analyze_result(services.predictors.get(model_name), image))
    except InferenceError as exc:
        raise _as_service_error(exc) from None
    return JSONResponse(result, status_code=200)
