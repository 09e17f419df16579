"""``/computervision/models/{model}/exports`` (docs/exports.md#api): export packages of a trained
model, each built by a job; a succeeded one carries a pre-signed, expiring ``downloadUri``.
Beyond the retired API (it had no exports; Custom Vision's are in routes/customvision/iterations.py)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from loupe.api.body import read_json_body
from loupe.api.openapi import errors, json_body, query, resource_name
from loupe.api.paging import PAGING, page
from loupe.exports.record import ExportRecord
from loupe.exports.service import ExportService
from loupe.services import Services
from loupe.wire import WireModel

router = APIRouter(prefix="/computervision/models/{model}/exports", tags=["exports"])

Model = Annotated[str, resource_name("model")]
Platform = Annotated[str, resource_name("export platform (ONNX, OpenVino, TensorFlow, CoreML or DockerFile, any case)")]
FLAVOR = query("flavor", {"type": "string", "maxLength": 64},
               "The package's flavor: none, ONNXFloat16, ONNX10 or ONNX12 (ONNX), TensorFlowLite or TensorFlowLiteFloat16 "
               "(TensorFlow), CoreMLFloat16 (CoreML), Linux or ARM (DockerFile) (docs/exports.md).")


class ExportIn(WireModel):
    flavor: str | None = None


def _exports(request: Request) -> ExportService:
    services: Services = request.app.state.services
    return services.exports


def _wire(exports: ExportService, record: ExportRecord) -> dict:
    return record.wire(exports.link(record))


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return (length is not None and length != "0") or "transfer-encoding" in request.headers


_BODY = json_body(ExportIn)
_BODY["requestBody"]["required"] = False
_EXPORT = {"description": "The export: status, and downloadUri once succeeded",
           "content": {"application/json": {"schema": {"type": "object"}}}}


@router.put("/{platform}", status_code=202, openapi_extra=_BODY,
            summary="Export a trained model as a package (a job; a succeeded export is answered as it is)",
            responses={200: _EXPORT, 202: _EXPORT, **errors(404, 409, 415)})
async def create_export(model: Model, platform: Platform, request: Request) -> JSONResponse:
    body = await read_json_body(request, ExportIn) if _has_body(request) else ExportIn()
    exports = _exports(request)
    started = await run_in_threadpool(exports.create, model, platform, body.flavor)
    return JSONResponse(_wire(exports, started.record), status_code=202 if started.created else 200)


@router.get("/{platform}", summary="Get an export, with downloadUri once it succeeded",
            openapi_extra={"parameters": [FLAVOR]}, responses={200: _EXPORT, **errors(404)})
async def get_export(model: Model, platform: Platform, request: Request) -> JSONResponse:
    exports = _exports(request)
    flavor = request.query_params.get("flavor")
    record = await run_in_threadpool(exports.get, model, platform, flavor)
    return JSONResponse(_wire(exports, record))


@router.get("", summary="List a model's exports", openapi_extra=PAGING, responses=errors(404))
async def list_exports(model: Model, request: Request) -> JSONResponse:
    exports = _exports(request)
    records = await run_in_threadpool(exports.list, model)
    return JSONResponse(page(request, records, lambda r: _wire(exports, r)))
