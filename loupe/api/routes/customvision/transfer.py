"""Training API: project export and import, and a project's artifacts (docs/customvision.md#transfer)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from loupe.api.routes.customvision.common import answer, check_version, query, services

router = APIRouter(prefix="/customvision/{version}/training/projects", include_in_schema=False,
                   dependencies=[Depends(check_version)])


def _transfer(request: Request):
    return services(request).customvision.transfer


@router.get("/{project_id}/export")
async def export_project(project_id: str, request: Request) -> Response:
    """ProjectExport: counts and a token that POST /projects/import takes for 24 hours."""
    return answer(await run_in_threadpool(_transfer(request).export, project_id))


@router.post("/import")
async def import_project(request: Request) -> Response:
    """The new project, copied whole before the answer (status Succeeded, never Importing)."""
    cv = services(request).customvision
    record = await run_in_threadpool(cv.transfer.import_, query(request, "token"), query(request, "name"))
    return answer(cv.projects.wire(record))


@router.get("/{project_id}/artifacts")
async def get_artifact(project_id: str, request: Request) -> Response:
    """A blob under the project's folder by its relative path, streamed as it is read."""
    download, content_type = await run_in_threadpool(_transfer(request).artifact, project_id, query(request, "path"))
    return StreamingResponse(download.chunks(), media_type=content_type,
                             headers={"Content-Length": str(download.size)})
