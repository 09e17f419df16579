"""``/computervision/datasets`` (docs/wire-contract.md#datasets)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from loupe.api.body import read_json_body
from loupe.api.openapi import errors, header, json_body, resource_name
from loupe.api.paging import PAGING, page
from loupe.datasets.record import DatasetRecord
from loupe.datasets.requests import DatasetIn
from loupe.datasets.service import check_name
from loupe.services import Services

router = APIRouter(prefix="/computervision/datasets", tags=["datasets"])

Name = Annotated[str, resource_name("dataset")]
IF_MATCH = {"parameters": [header("If-Match", "Only if the dataset's eTag matches (412 otherwise).")]}


def _services(request: Request) -> Services:
    return request.app.state.services


def _dataset_response(record: DatasetRecord, status: int = 200) -> JSONResponse:
    return JSONResponse(record.wire(), status_code=status, headers={"ETag": f'"{record.etag}"'})


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
