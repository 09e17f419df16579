"""Training API: domains, projects and tags (docs/customvision.md#projects)."""
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
    query,
    services,
)
from loupe.customvision.domains import DOMAINS, find_domain
from loupe.customvision.errors import not_found
from loupe.customvision.wire import tag as tag_wire

router = APIRouter(prefix="/customvision/{version}/training", dependencies=[Depends(check_version)],
                   include_in_schema=False)


def _cv(request: Request):
    return services(request).customvision


@router.get("/domains")
async def get_domains() -> Response:
    return answer([domain.wire() for domain in DOMAINS])


@router.get("/domains/{domain_id}")
async def get_domain(domain_id: str) -> Response:
    domain = find_domain(domain_id)
    if domain is None:
        raise not_found("NotFoundDomain", f"Domain '{domain_id[:64]}' was not found.")
    return answer(domain.wire())


@router.get("/projects")
async def get_projects(request: Request) -> Response:
    cv = _cv(request)
    return answer([cv.projects.wire(p) for p in await run_in_threadpool(cv.projects.list)])


@router.post("/projects")
async def create_project(request: Request) -> Response:
    cv = _cv(request)
    options = await json_body(request, required=False)
    record = await run_in_threadpool(
        cv.projects.create, query(request, "name"), query(request, "description"), query(request, "domainId"),
        query(request, "classificationType"), query(request, "targetExportPlatforms"),
        json_object(options) if options is not None else None)
    return answer(cv.projects.wire(record))


@router.get("/projects/{project_id}")
async def get_project(project_id: str, request: Request) -> Response:
    cv = _cv(request)
    return answer(cv.projects.wire(await run_in_threadpool(cv.projects.get, project_id)))


@router.patch("/projects/{project_id}")
async def update_project(project_id: str, request: Request) -> Response:
    cv = _cv(request)
    body = json_object(await json_body(request))
    return answer(cv.projects.wire(await run_in_threadpool(cv.projects.update, project_id, body)))


@router.delete("/projects/{project_id}")
async def delete_project(project_id: str, request: Request) -> Response:
    await run_in_threadpool(_cv(request).projects.delete, project_id)
    return no_content()


# --- tags
def _tags_wire(cv, project_id: str, tags) -> list[dict]:
    counts = cv.projects.tag_counts(project_id)
    return [tag_wire(t, counts.get(t.id, 0)) for t in tags]


@router.get("/projects/{project_id}/tags")
async def get_tags(project_id: str, request: Request) -> Response:
    cv = _cv(request)

    def run():
        tags = cv.projects.tags(project_id)
        return _tags_wire(cv, tags[0].project_id, tags) if tags else []

    return answer(await run_in_threadpool(run))


@router.post("/projects/{project_id}/tags")
async def create_tag(project_id: str, request: Request) -> Response:
    cv = _cv(request)
    record = await run_in_threadpool(cv.projects.create_tag, project_id, query(request, "name"),
                                     query(request, "description"), query(request, "type"))
    return answer(tag_wire(record, 0))


@router.get("/projects/{project_id}/tags/{tag_id}")
async def get_tag(project_id: str, tag_id: str, request: Request) -> Response:
    cv = _cv(request)

    def run():
        record = cv.projects.tag(project_id, tag_id)
        return _tags_wire(cv, record.project_id, [record])[0]

    return answer(await run_in_threadpool(run))


@router.patch("/projects/{project_id}/tags/{tag_id}")
async def update_tag(project_id: str, tag_id: str, request: Request) -> Response:
    cv = _cv(request)
    body = json_object(await json_body(request))

    def run():
        record = cv.projects.update_tag(project_id, tag_id, body)
        return _tags_wire(cv, record.project_id, [record])[0]

    return answer(await run_in_threadpool(run))


@router.delete("/projects/{project_id}/tags/{tag_id}")
async def delete_tag(project_id: str, tag_id: str, request: Request) -> Response:
    await run_in_threadpool(_cv(request).projects.delete_tag, project_id, tag_id)
    return no_content()
