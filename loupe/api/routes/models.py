"""``/computervision/models`` (docs/wire-contract.md#models)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from loupe.api.body import read_json_body
from loupe.api.openapi import errors, json_body, resource_name
from loupe.api.paging import PAGING, page
from loupe.models.record import ModelRecord
from loupe.models.requests import ModelIn
from loupe.services import Services

router = APIRouter(prefix="/computervision/models", tags=["models"])

Name = Annotated[str, resource_name("model")]


def _services(request: Request) -> Services:
    return request.app.state.services


@router.put("/{name}", status_code=201, openapi_extra=json_body(ModelIn), summary="Create a model: starts training",
            responses=errors(409, 415))
async def create_model(name: Name, request: Request) -> JSONResponse:
    body = await read_json_body(request, ModelIn)
    record = await run_in_threadpool(_services(request).models.create, name, body)
    return JSONResponse(record.wire(), status_code=201)


@router.get("/{name}", summary="Get a model, with its status, progress and performance", responses=errors(404))
async def get_model(name: Name, request: Request) -> JSONResponse:
    record = await run_in_threadpool(_services(request).models.get, name)
    return JSONResponse(record.wire())


@router.post("/{name}:cancel", status_code=202, summary="Cancel training", responses=errors(404))
async def cancel_model(name: Name, request: Request) -> JSONResponse:
    # the swagger has no body here, but the samples client parses one (docs/wire-contract.md#json-on-every-success)
    record = await run_in_threadpool(_services(request).models.cancel, name)
    return JSONResponse(record.wire(), status_code=202)


@router.delete("/{name}", status_code=204, summary="Delete a model (succeeded, failed or cancelled)",
               responses=errors(404, 409))
async def delete_model(name: Name, request: Request) -> Response:
    await run_in_threadpool(_services(request).models.delete, name)
    return Response(status_code=204)


@router.get("", summary="List models", openapi_extra=PAGING)
async def list_models(request: Request) -> JSONResponse:
    records = await run_in_threadpool(_services(request).models.list)
    return JSONResponse(page(request, records, ModelRecord.wire))
