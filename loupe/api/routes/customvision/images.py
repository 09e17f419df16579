"""Training API: images, their tags, regions and metadata (docs/customvision.md#images)."""
from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from loupe.api.routes.customvision.common import (
    answer,
    check_version,
    images_from_body,
    json_body,
    json_object,
    no_content,
    page,
    query,
    query_bool,
    query_list,
    read_body,
    services,
)
from loupe.customvision import limits
from loupe.customvision.errors import bad_request
from loupe.customvision.images import ImageEdits, NewImage, fetch_new_image, region_list, tag_id_list

router = APIRouter(prefix="/customvision/{version}/training/projects/{project_id}", include_in_schema=False,
                   dependencies=[Depends(check_version)])

# 64 images of 6 MB and their multipart framing
MAX_DATA_BODY = limits.MAX_BATCH_IMAGES * (limits.TRAINING_IMAGE_LIMITS.max_bytes + 4096)


def _cv(request: Request):
    return services(request).customvision


def _batch(body: object) -> tuple[list[dict], list[str], dict | None]:
    body = json_object(body)
    images = body.get("images")
    if not isinstance(images, list) or not images:
        raise bad_request("BadRequestImageBatch", "The batch must hold a non-empty 'images' list.")
    if len(images) > limits.MAX_BATCH_IMAGES:
        raise bad_request("BadRequestImageBatch", f"The batch holds {len(images)} images; at most "
                          f"{limits.MAX_BATCH_IMAGES} are allowed per request.")
    if not all(isinstance(i, dict) for i in images):
        raise bad_request("BadRequestImageBatch", "Every entry of 'images' must be an object.")
    metadata = body.get("metadata")
    return images, tag_id_list(body.get("tagIds"), "tagIds"), metadata


@router.post("/images")
async def create_images_from_data(project_id: str, request: Request) -> Response:
    cv = _cv(request)
    tag_ids = query_list(request, "tagIds", limits.MAX_BATCH_TAGS)
    body = await read_body(request, MAX_DATA_BODY, "The image batch")
    files = images_from_body(request.headers.get("content-type", ""), body, limits.MAX_BATCH_IMAGES)
    if len(files) > limits.MAX_BATCH_IMAGES:
        raise bad_request("BadRequestImageBatch", f"The batch holds {len(files)} images; at most "
                          f"{limits.MAX_BATCH_IMAGES} are allowed per request.")
    images = [NewImage(data, f'"{name}"' if name else None) for data, name in files]
    summary, status = await run_in_threadpool(cv.images.add, project_id, images, tag_ids)
    return answer(summary, status)


@router.post("/images/files")
async def create_images_from_files(project_id: str, request: Request) -> Response:
    cv = _cv(request)
    raw, batch_tags, metadata = _batch(await json_body(request, limits.MAX_BATCH_BODY_BYTES))
    images = []
    for index, item in enumerate(raw):
        try:
            data = base64.b64decode(item.get("contents") or "", validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise bad_request("BadRequestImageStream", f"images[{index}].contents is not base64.") from None
        name = item.get("name")
        images.append(NewImage(data, f'"{name}"' if isinstance(name, str) and name else None,
                               tag_id_list(item.get("tagIds"), f"images[{index}].tagIds"),
                               region_list(item.get("regions"), f"images[{index}].regions")))
    summary, status = await run_in_threadpool(cv.images.add, project_id, images, batch_tags, metadata)
    return answer(summary, status)


@router.post("/images/urls")
async def create_images_from_urls(project_id: str, request: Request) -> Response:
    cv = _cv(request)
    settings = services(request).settings
    raw, batch_tags, metadata = _batch(await json_body(request))

    def run():
        cv.projects.get(project_id)  # an unknown project fetches nothing
        images = [fetch_new_image(item.get("url"), tag_id_list(item.get("tagIds"), f"images[{i}].tagIds"),
                                  region_list(item.get("regions"), f"images[{i}].regions"),
                                  allow_http=settings.allow_http_image_urls,
                                  allow_loopback=settings.allow_loopback_image_urls)
                  for i, item in enumerate(raw)]
        return cv.images.add(project_id, images, batch_tags, metadata)

    summary, status = await run_in_threadpool(run)
    return answer(summary, status)


# --- listing
def _list(request: Request, project_id: str, tagging: str, use_tags: bool = True):
    cv = _cv(request)
    tag_ids = query_list(request, "tagIds", limits.MAX_BATCH_TAGS) if use_tags else []
    iteration_id = query(request, "iterationId")

    def run():
        only = cv.iteration_image_ids(project_id, iteration_id) if iteration_id else None
        return cv.images.query(project_id, tag_ids=tag_ids, tagging=tagging, order_by=query(request, "orderBy"),
                               image_ids=only)

    return run


@router.get("/images")
async def get_images(project_id: str, request: Request) -> Response:
    cv = _cv(request)
    found = await run_in_threadpool(_list(request, project_id, query(request, "taggingStatus") or "All"))
    return answer(await run_in_threadpool(cv.images.wire_all, project_id.lower(), page(found, request)))


@router.get("/images/count")
async def get_image_count(project_id: str, request: Request) -> Response:
    found = await run_in_threadpool(_list(request, project_id, query(request, "taggingStatus") or "All"))
    return answer(len(found))


@router.get("/images/tagged")
async def get_tagged_images(project_id: str, request: Request) -> Response:
    cv = _cv(request)
    found = await run_in_threadpool(_list(request, project_id, "Tagged"))
    return answer(await run_in_threadpool(cv.images.wire_all, project_id.lower(), page(found, request)))


@router.get("/images/tagged/count")
async def get_tagged_image_count(project_id: str, request: Request) -> Response:
    return answer(len(await run_in_threadpool(_list(request, project_id, "Tagged"))))


@router.get("/images/untagged")
async def get_untagged_images(project_id: str, request: Request) -> Response:
    cv = _cv(request)
    found = await run_in_threadpool(_list(request, project_id, "Untagged", use_tags=False))
    return answer(await run_in_threadpool(cv.images.wire_all, project_id.lower(), page(found, request)))


@router.get("/images/untagged/count")
async def get_untagged_image_count(project_id: str, request: Request) -> Response:
    return answer(len(await run_in_threadpool(_list(request, project_id, "Untagged", use_tags=False))))


@router.get("/images/id")
async def get_images_by_ids(project_id: str, request: Request) -> Response:
    cv = _cv(request)
    ids = query_list(request, "imageIds", limits.MAX_TAKE)

    def run():
        cv.projects.get(project_id)
        found = [image for image in (cv.store.images.get(project_id.lower(), i.lower()) for i in ids) if image]
        return cv.images.wire_all(project_id.lower(), found)

    return answer(await run_in_threadpool(run))


@router.delete("/images")
async def delete_images(project_id: str, request: Request) -> Response:
    cv = _cv(request)
    await run_in_threadpool(cv.images.delete, project_id, query_list(request, "imageIds"),
                            query_bool(request, "allImages"))
    return no_content()


# --- regions, image tags, metadata
@router.post("/images/regions")
async def create_image_regions(project_id: str, request: Request) -> Response:
    body = json_object(await json_body(request))
    regions = body.get("regions")
    if not isinstance(regions, list) or not all(isinstance(r, dict) for r in regions):
        raise bad_request("BadRequestImageRegions", "The body must hold a 'regions' list of objects.")
    summary = await run_in_threadpool(ImageEdits(_cv(request).images).add_regions, project_id, regions)
    status = 200 if not summary["exceeded"] else 207
    return answer(summary, status)


@router.delete("/images/regions")
async def delete_image_regions(project_id: str, request: Request) -> Response:
    await run_in_threadpool(ImageEdits(_cv(request).images).delete_regions, project_id,
                            query_list(request, "regionIds"))
    return no_content()


@router.post("/images/tags")
async def create_image_tags(project_id: str, request: Request) -> Response:
    body = json_object(await json_body(request))
    pairs = body.get("tags")
    if not isinstance(pairs, list) or not all(isinstance(p, dict) for p in pairs):
        raise bad_request("BadRequestImageTags", "The body must hold a 'tags' list of {imageId, tagId}.")
    return answer(await run_in_threadpool(ImageEdits(_cv(request).images).add_tags, project_id, pairs))


@router.delete("/images/tags")
async def delete_image_tags(project_id: str, request: Request) -> Response:
    await run_in_threadpool(ImageEdits(_cv(request).images).delete_tags, project_id,
                            query_list(request, "imageIds"), query_list(request, "tagIds"))
    return no_content()


@router.post("/images/metadata")
async def update_image_metadata(project_id: str, request: Request) -> Response:
    body = json_object(await json_body(request), "The metadata")
    summary, status = await run_in_threadpool(ImageEdits(_cv(request).images).update_metadata, project_id,
                                              query_list(request, "imageIds"), body)
    return answer(summary, status)
