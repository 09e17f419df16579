"""Prediction API: classify and detect with a published iteration (docs/customvision.md#prediction).

``POST /customvision/{version}/prediction/{projectId}/{classify|detect}/iterations/{publishedName}/
{image|url}[/nostore]``: the SDK sends the image as multipart ``imageData`` (the REST quickstarts as
``application/octet-stream``), the URL as ``{"url": ...}``. 200 on success, always (the SDK accepts
nothing else). The body is refused past 4 MB plus multipart framing before more of it is read.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from loupe.api.routes.customvision.common import (
    answer,
    check_version,
    images_from_body,
    json_body,
    json_object,
    query,
    read_body,
    services,
)
from loupe.customvision import limits
from loupe.customvision.errors import CustomVisionError, bad_request, cv_error
from loupe.errors import shown

router = APIRouter(prefix="/customvision/{version}/prediction/{project_id}", include_in_schema=False,
                   dependencies=[Depends(check_version)])

MULTIPART_FRAMING = 64 * 1024
MAX_URL_BODY = 16 * 1024
TASKS = ("classify", "detect")


async def image_bytes(request: Request, max_bytes: int) -> bytes:
    """The image of an image route: the multipart part (with or without a filename) or the raw body.
    A body over ``max_bytes`` plus framing is a 400 BadRequestImageSizeBytes, read no further."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "application/json":
        raise cv_error(415, "UnsupportedMediaType", "This route takes the image bytes (multipart/form-data, "
                       "application/octet-stream or image/*); send a {\"url\": ...} body to the /url route.")
    try:
        body = await read_body(request, max_bytes + MULTIPART_FRAMING, "The image")
    except CustomVisionError as exc:
        if exc.status != 413:
            raise
        raise bad_request("BadRequestImageSizeBytes", f"The image is larger than {max_bytes} bytes.") from None
    return images_from_body(request.headers.get("content-type", ""), body, 1)[0][0]


async def image_url(request: Request) -> object:
    body = json_object(await json_body(request, MAX_URL_BODY), "The body")
    return next((v for k, v in body.items() if str(k).lower() == "url"), None)


def _task(task: str) -> str:
    if task not in TASKS:
        raise cv_error(404, "NotFound", f"'{shown(task, 32)}' is not a prediction route; use classify or detect.")
    return task


async def _image(request: Request, project_id: str, task: str, published_name: str, store: bool) -> Response:
    task = _task(task)
    data = await image_bytes(request, limits.PREDICTION_IMAGE_BYTES)
    result = await run_in_threadpool(
        services(request).customvision.predictions.predict, project_id, data, published_name=published_name,
        store=store, application=query(request, "application"), task=task)
    return answer(result)


async def _url(request: Request, project_id: str, task: str, published_name: str, store: bool) -> Response:
    task = _task(task)
    url = await image_url(request)
    result = await run_in_threadpool(
        services(request).customvision.predictions.predict_url, project_id, url, published_name=published_name,
        store=store, application=query(request, "application"), task=task)
    return answer(result)


@router.post("/{task}/iterations/{published_name}/image")
async def predict_image(project_id: str, task: str, published_name: str, request: Request) -> Response:
    return await _image(request, project_id, task, published_name, store=True)


@router.post("/{task}/iterations/{published_name}/image/nostore")
async def predict_image_with_no_store(project_id: str, task: str, published_name: str, request: Request) -> Response:
    return await _image(request, project_id, task, published_name, store=False)


@router.post("/{task}/iterations/{published_name}/url")
async def predict_image_url(project_id: str, task: str, published_name: str, request: Request) -> Response:
    return await _url(request, project_id, task, published_name, store=True)


@router.post("/{task}/iterations/{published_name}/url/nostore")
async def predict_image_url_with_no_store(project_id: str, task: str, published_name: str,
                                          request: Request) -> Response:
    return await _url(request, project_id, task, published_name, store=False)
