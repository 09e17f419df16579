"""``/computervision/models/{model}/evaluations`` (docs/wire-contract.md#evaluations). The samples
EvaluationClient reaches them through ``//models/...``, which the slash middleware collapses."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from loupe.api.body import read_json_body
from loupe.api.openapi import errors, json_body, resource_name
from loupe.api.paging import PAGING, page
from loupe.evaluations.record import EvaluationRecord
from loupe.evaluations.service import EvaluationIn
from loupe.services import Services

router = APIRouter(prefix="/computervision/models/{model}/evaluations", tags=["evaluations"])

Model = Annotated[str, resource_name("model")]
Name = Annotated[str, resource_name("evaluation")]


def _services(request: Request) -> Services:
    return request.app.state.services


@router.put("/{name}", status_code=201, openapi_extra=json_body(EvaluationIn),
            summary="Evaluate a trained model on a test dataset", responses=errors(404, 409, 415))
async def create_evaluation(model: Model, name: Name, request: Request) -> JSONResponse:
    body = await read_json_body(request, EvaluationIn)
    record = await run_in_threadpool(_services(request).evaluations.create, model, name, body)
    return JSONResponse(record.wire(), status_code=201)


@router.get("/{name}", summary="Get an evaluation", responses=errors(404))
async def get_evaluation(model: Model, name: Name, request: Request) -> JSONResponse:
    record = await run_in_threadpool(_services(request).evaluations.get, model, name)
    return JSONResponse(record.wire())


@router.delete("/{name}", status_code=204, summary="Delete an evaluation", responses=errors(404, 409))
async def delete_evaluation(model: Model, name: Name, request: Request) -> Response:
    await run_in_threadpool(_services(request).evaluations.delete, model, name)
    return Response(status_code=204)


@router.get("", summary="List a model's evaluations", openapi_extra=PAGING, responses=errors(404))
async def list_evaluations(model: Model, request: Request) -> JSONResponse:
    records = await run_in_threadpool(_services(request).evaluations.list, model)
    return JSONResponse(page(request, records, EvaluationRecord.wire))
