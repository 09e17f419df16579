"""Training API: training, iterations, performance, publishing (docs/customvision.md#training)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from loupe.api.routes.customvision.common import (
    answer,
    check_version,
    json_body,
    json_object,
    no_content,
    page,
    query,
    query_bool,
    query_float,
    query_int,
    query_list,
    services,
)
from loupe.customvision import limits
from loupe.customvision.errors import bad_request
from loupe.customvision.exports import IterationExports
from loupe.customvision.wire import image as image_wire
from loupe.customvision.wire import iteration as iteration_wire

router = APIRouter(prefix="/customvision/{version}/training/projects/{project_id}", include_in_schema=False,
                   dependencies=[Depends(check_version)])


def _cv(request: Request):
    return services(request).customvision


def _wire(cv, record) -> dict:
    project = cv.projects.get(record.project_id)
    return iteration_wire(record, cv.iterations.status(record), cv.projects.domain(project).exportable)


@router.post("/train")
async def train_project(project_id: str, request: Request) -> Response:
    cv = _cv(request)
    params = await json_body(request, required=False)
    params = json_object(params, "TrainingParameters") if params is not None else {}
    selected = params.get("selectedTags") or []
    if not isinstance(selected, list) or len(selected) > 500:
        raise bad_request("BadRequestInvalidIds", "selectedTags must be a list of at most 500 tag ids.")
    if params.get("customBaseModelInfo"):
        raise bad_request("BadRequestNotSupported", "customBaseModelInfo is not supported by Loupe; train from the "
                          "project's images.")
    budget = query_int(request, "reservedBudgetInHours", 0, 0, 24 * 7)

    def run():
        record = cv.iterations.train(project_id, query(request, "trainingType"), budget,
                                     query_bool(request, "forceTrain"), selected)
        return _wire(cv, record)

    return answer(await run_in_threadpool(run))


@router.get("/iterations")
async def get_iterations(project_id: str, request: Request) -> Response:
    cv = _cv(request)
    return answer(await run_in_threadpool(lambda: [_wire(cv, r) for r in cv.iterations.list(project_id)]))


@router.get("/iterations/{iteration_id}")
async def get_iteration(project_id: str, iteration_id: str, request: Request) -> Response:
    cv = _cv(request)
    return answer(await run_in_threadpool(lambda: _wire(cv, cv.iterations.get(project_id, iteration_id))))


@router.patch("/iterations/{iteration_id}")
async def update_iteration(project_id: str, iteration_id: str, request: Request) -> Response:
    cv = _cv(request)
    body = json_object(await json_body(request))
    return answer(await run_in_threadpool(lambda: _wire(cv, cv.iterations.update(project_id, iteration_id, body))))


@router.delete("/iterations/{iteration_id}")
async def delete_iteration(project_id: str, iteration_id: str, request: Request) -> Response:
    await run_in_threadpool(_cv(request).iterations.delete, project_id, iteration_id)
    return no_content()


@router.post("/iterations/{iteration_id}/publish")
async def publish_iteration(project_id: str, iteration_id: str, request: Request) -> Response:
    cv = _cv(request)
    done = await run_in_threadpool(cv.iterations.publish, project_id, iteration_id, query(request, "publishName"),
                                   query(request, "predictionId"), query_bool(request, "overwrite"))
    return answer(done)  # JSON true: the SDK deserialises a bool


@router.delete("/iterations/{iteration_id}/publish")
async def unpublish_iteration(project_id: str, iteration_id: str, request: Request) -> Response:
    await run_in_threadpool(_cv(request).iterations.unpublish, project_id, iteration_id)
    return no_content()


@router.get("/iterations/{iteration_id}/performance")
async def get_iteration_performance(project_id: str, iteration_id: str, request: Request) -> Response:
    cv = _cv(request)
    threshold = query_float(request, "threshold", 0.5)
    overlap = query_float(request, "overlapThreshold", 0.3)
    return answer(await run_in_threadpool(cv.iterations.performance, project_id, iteration_id, threshold, overlap))


def _image_performances(request: Request, project_id: str, iteration_id: str) -> list:
    cv = _cv(request)
    found = cv.iterations.image_performances(project_id, iteration_id,
                                             query_list(request, "tagIds", limits.MAX_BATCH_TAGS))
    oldest = (query(request, "orderBy") or "Newest").strip().lower() == "oldest"
    return sorted(found, key=lambda pair: (pair[0].created, pair[0].id), reverse=not oldest)


@router.get("/iterations/{iteration_id}/performance/images")
async def get_image_performances(project_id: str, iteration_id: str, request: Request) -> Response:
    cv = _cv(request)

    def run():
        chosen = page(_image_performances(request, project_id, iteration_id), request)
        names = {t.id: t.name for t in cv.store.tags.all(project_id.lower())}
        out = []
        for image, predictions in chosen:
            body = image_wire(image, names, cv.blobs.link)
            out.append({"predictions": predictions, "id": body["id"], "created": body["created"],
                        "width": body["width"], "height": body["height"], "imageUri": body["resizedImageUri"],
                        "thumbnailUri": body["thumbnailUri"], "tags": body["tags"], "regions": body["regions"]})
        return out

    return answer(await run_in_threadpool(run))


@router.get("/iterations/{iteration_id}/performance/images/count")
async def get_image_performance_count(project_id: str, iteration_id: str, request: Request) -> Response:
    return answer(len(await run_in_threadpool(_image_performances, request, project_id, iteration_id)))


# --- exports: jobs that build Custom Vision's packages (docs/customvision.md#exports)
def _exports(request: Request) -> IterationExports:
    return IterationExports(_cv(request).iterations, services(request).exports)


@router.get("/iterations/{iteration_id}/export")
async def get_exports(project_id: str, iteration_id: str, request: Request) -> Response:
    return answer(await run_in_threadpool(_exports(request).list, project_id, iteration_id))


@router.post("/iterations/{iteration_id}/export")
async def export_iteration(project_id: str, iteration_id: str, request: Request) -> Response:
    exports = _exports(request)
    return answer(await run_in_threadpool(exports.export, project_id, iteration_id, query(request, "platform"),
                                          query(request, "flavor")))
