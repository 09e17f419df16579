"""Training API: quick test, stored predictions, the smart labeler and region proposals
(docs/customvision.md#prediction). Status codes are the SDK's: 200 (207 for a partly failed
create_images_from_predictions), 204 for DELETE."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from loupe.api.routes.customvision.common import (
    answer,
    check_version,
    json_body,
    no_content,
    query,
    query_bool,
    query_list,
    services,
)
from loupe.api.routes.customvision.prediction_api import image_bytes, image_url
from loupe.customvision import limits
from loupe.customvision.prediction import MAX_DELETE_IDS, MAX_SUGGEST_IMAGES

router = APIRouter(prefix="/customvision/{version}/training/projects/{project_id}", include_in_schema=False,
                   dependencies=[Depends(check_version)])

# quick_test_image's SDK docstring: "Supports images up to 6MB" (the Prediction API's is 4 MB)
QUICK_TEST_BYTES = limits.TRAINING_IMAGE_LIMITS.max_bytes


def _predictions(request: Request):
    return services(request).customvision.predictions


# --- quick test
@router.post("/quicktest/image")
async def quick_test_image(project_id: str, request: Request) -> Response:
    store = query_bool(request, "store", True)
    data = await image_bytes(request, QUICK_TEST_BYTES)
    result = await run_in_threadpool(_predictions(request).predict, project_id, data,
                                     iteration_id=query(request, "iterationId"), store=store,
                                     max_bytes=QUICK_TEST_BYTES)
    return answer(result)


@router.post("/quicktest/url")
async def quick_test_image_url(project_id: str, request: Request) -> Response:
    store = query_bool(request, "store", True)
    url = await image_url(request)
    result = await run_in_threadpool(_predictions(request).predict_url, project_id, url,
                                     iteration_id=query(request, "iterationId"), store=store,
                                     max_bytes=QUICK_TEST_BYTES)
    return answer(result)


# --- stored predictions
@router.post("/predictions/query")
async def query_predictions(project_id: str, request: Request) -> Response:
    token = await json_body(request, required=False)
    return answer(await run_in_threadpool(_predictions(request).query, project_id, token))


@router.delete("/predictions")
async def delete_prediction(project_id: str, request: Request) -> Response:
    # the service answers more than 64 ids with BadRequestPredictionIdsExceededCount
    ids = query_list(request, "ids", limit=16 * MAX_DELETE_IDS)
    await run_in_threadpool(_predictions(request).delete, project_id, ids)
    return no_content()


@router.post("/images/predictions")
async def create_images_from_predictions(project_id: str, request: Request) -> Response:
    batch = await json_body(request)
    summary, status = await run_in_threadpool(_predictions(request).to_training_images, project_id, batch)
    return answer(summary, status)


# --- the smart labeler
@router.post("/tagsandregions/suggestions")
async def suggest_tags_and_regions(project_id: str, request: Request) -> Response:
    ids = query_list(request, "imageIds", limit=16 * MAX_SUGGEST_IMAGES)
    result = await run_in_threadpool(_predictions(request).suggest, project_id, query(request, "iterationId"), ids)
    return answer(result)


@router.post("/images/suggested")
async def query_suggested_images(project_id: str, request: Request) -> Response:
    token = await json_body(request, required=False)
    result = await run_in_threadpool(_predictions(request).query_suggested, project_id,
                                     query(request, "iterationId"), token)
    return answer(result)


@router.post("/images/suggested/count")
async def query_suggested_image_count(project_id: str, request: Request) -> Response:
    tag_filter = await json_body(request, required=False)
    result = await run_in_threadpool(_predictions(request).suggested_count, project_id,
                                     query(request, "iterationId"), tag_filter)
    return answer(result)


# --- region proposals
@router.post("/images/{image_id}/regionproposals")
async def get_image_region_proposals(project_id: str, image_id: str, request: Request) -> Response:
    return answer(await run_in_threadpool(_predictions(request).region_proposals, project_id, image_id))
