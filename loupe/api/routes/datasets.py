"""``/computervision/datasets`` (docs/wire-contract.md#datasets)."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from loupe.api.body import read_json_body
from loupe.api.openapi import errors, header, json_body, resource_name
from loupe.api.paging import PAGING, page
from loupe.datasets.conversion import MAX_IMPORT_ZIP_BYTES
from loupe.datasets.imports import import_zip
from loupe.datasets.record import DatasetRecord
from loupe.datasets.requests import DatasetIn
from loupe.datasets.service import check_name
from loupe.errors import ServiceError, bad_request, shown
from loupe.services import Services

router = APIRouter(prefix="/computervision/datasets", tags=["datasets"])

Name = Annotated[str, resource_name("dataset")]
IF_MATCH = {"parameters": [header("If-Match", "Only if the dataset's eTag matches (412 otherwise).")]}


# docs/formats.md#upload: a zip of a dataset in any layout of docs/formats.md#layouts
ZIP_TYPES = ("application/zip", "application/x-zip-compressed", "application/octet-stream")
_ZIP = {"type": "string", "format": "binary", "maxLength": MAX_IMPORT_ZIP_BYTES}
IMPORT_OPENAPI: dict[str, Any] = {"requestBody": {
    "required": True,
    "description": f"A zip (at most {MAX_IMPORT_ZIP_BYTES} bytes) of a dataset in any layout of docs/formats.md#layouts.",
    "content": {media: {"schema": _ZIP} for media in ZIP_TYPES},
}}


def _services(request: Request) -> Services:
    return request.app.state.services


def _dataset_response(record: DatasetRecord, status: int = 200) -> JSONResponse:
    return JSONResponse(record.wire(), status_code=status, headers={"ETag": f'"{record.etag}"'})


def _too_large() -> ServiceError:
    return ServiceError(413, "InvalidRequest", f"The zip is larger than {MAX_IMPORT_ZIP_BYTES} bytes "
                        "(docs/formats.md#upload).", inner_code="BadArgument")


async def _save_zip(request: Request, archive: Path) -> None:
    """The body into ``archive``, refused past MAX_IMPORT_ZIP_BYTES: by Content-Length before reading,
    and while streaming (a client may send no length, or a wrong one)."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() not in ZIP_TYPES:
        raise ServiceError(415, "InvalidRequest", f"Content-Type '{shown(content_type)}' is not supported; send "
                           "the zip as application/zip.", inner_code="UnsupportedMediaType")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_IMPORT_ZIP_BYTES:
        raise _too_large()
    written = 0
    with archive.open("wb") as out:
        async for chunk in request.stream():
            written += len(chunk)
            if written > MAX_IMPORT_ZIP_BYTES:
                raise _too_large()
            out.write(chunk)
    if written == 0:
        raise bad_request("The request body is empty; a zip is expected.", inner_code="BadArgument")


# before PUT /{name}: "x:import" would match {name} too
@router.put("/{name}:import", status_code=201, openapi_extra=IMPORT_OPENAPI,
            summary="Import a zip of a dataset in any supported layout", responses=errors(409, 413, 415))
async def import_dataset(name: Name, request: Request) -> JSONResponse:
    check_name(name)
    with tempfile.TemporaryDirectory(prefix="loupe-upload-") as tmp:
        archive = Path(tmp, "upload.zip")
        await _save_zip(request, archive)
        record = await run_in_threadpool(import_zip, _services(request).datasets, name, archive)
    return _dataset_response(record, 201)


@router.put("/{name}", status_code=201, openapi_extra=json_body(DatasetIn), summary="Register a dataset",
            responses=errors(409, 415))
async def register_dataset(name: Name, request: Request) -> JSONResponse:
    check_name(name)
    body = await read_json_body(request, DatasetIn)
    record = await run_in_threadpool(_services(request).datasets.register, name, body)
    return _dataset_response(record, 201)


@router.get("/{name}", summary="Get a dataset", responses=errors(404))
async def get_dataset(name: Name, request: Request) -> JSONResponse:
    check_name(name)
    record = await run_in_threadpool(_services(request).datasets.get, name)
    return _dataset_response(record)


@router.patch("/{name}", openapi_extra={**json_body(DatasetIn), **IF_MATCH}, summary="Update a dataset",
              responses=errors(404, 412, 415))
async def update_dataset(name: Name, request: Request) -> JSONResponse:
    check_name(name)
    body = await read_json_body(request, DatasetIn)
    record = await run_in_threadpool(
        _services(request).datasets.update, name, body, request.headers.get("if-match")
    )
    return _dataset_response(record)


@router.delete("/{name}", status_code=204, summary="Delete a dataset registration (the files stay)",
               openapi_extra=IF_MATCH, responses=errors(404, 412))
async def delete_dataset(name: Name, request: Request) -> Response:
    check_name(name)
    await run_in_threadpool(_services(request).datasets.delete, name, request.headers.get("if-match"))
    return Response(status_code=204)


@router.get("", summary="List datasets", openapi_extra=PAGING)
async def list_datasets(request: Request) -> JSONResponse:
    records = await run_in_threadpool(_services(request).datasets.list)
    return JSONResponse(page(request, records, DatasetRecord.wire))
