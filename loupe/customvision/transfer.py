"""Project export and import, and a project's artifacts by path (docs/customvision.md#transfer).

``export`` answers a ProjectExport whose token is a random opaque string, stored as a row of the
projects table (partition ``export``) with the project's id and an expiry; ``import_`` copies the
project the token names, as it is at import time, into a new project of this Loupe: its settings,
tags (new ids), images (their blobs, image tags, regions with remapped tag ids, metadata).
Iterations are not copied (a copy is trained anew). The import is synchronous and bounded
(MAX_IMPORT_IMAGES: it runs inside one HTTP request); larger projects are copied with
``python -m loupe.migrate customvision``. An import that fails midway deletes the partial project.
"""
from __future__ import annotations

import re
import secrets
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContentSettings

from loupe.customvision.blobs import ImageBlobs, image_prefix
from loupe.customvision.errors import CustomVisionError, bad_request, not_found
from loupe.customvision.images import image_id_for
from loupe.customvision.projects import ProjectService
from loupe.customvision.records import ImageRecord, ImageTag, ProjectRecord, Region
from loupe.customvision.store import PROJECTS_PARTITION, CustomVisionStore
from loupe.errors import shown
from loupe.storage.entities import utc_now
from loupe.storage.names import CV_PROJECTS_TABLE
from loupe.storage.table_store import AlreadyExists

EXPORT_PARTITION = "export"
TOKEN_HOURS = 24
# an import copies every image inside one request (a Function App answers within 230 s)
MAX_IMPORT_IMAGES = 2000
# blob copies in flight during an import
COPY_THREADS = 8
# what the estimate in ProjectExport assumes per image (three blobs read and written, one row)
_ESTIMATED_MS_PER_IMAGE = 40
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_IMAGE_BLOBS = ("original", "resized", "thumbnail")


def _iso(moment: datetime) -> str:
    """One fixed-width UTC form, so that expiry times compare as text (in a table query too)."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def invalid_token() -> CustomVisionError:
    return bad_request("BadRequestInvalidImportToken", "The import token is not valid: it is unknown, expired, or "
                       "its project was deleted. GET /training/projects/{projectId}/export gives a new one.")


class ProjectTransfer:
    def __init__(self, store: CustomVisionStore, blobs: ImageBlobs, projects: ProjectService) -> None:
        self.store = store
        self.blobs = blobs
        self.projects = projects
        self._tokens = store.storage.table(CV_PROJECTS_TABLE)

    # --- export
    def export(self, project_id: str) -> dict[str, Any]:
        """The ProjectExport of a project: its counts and a token valid for TOKEN_HOURS."""
        project = self.projects.get(project_id)
        images = self.store.images.all(project.id)
        if len(images) > MAX_IMPORT_IMAGES:
            raise bad_request("BadRequestExportValidationFailed", f"The project has {len(images)} images; an export "
                              f"can be imported with at most {MAX_IMPORT_IMAGES}. Copy larger projects with "
                              "`python -m loupe.migrate customvision`.")
        self._forget_expired()
        token = secrets.token_urlsafe(32)
        expires = utc_now() + timedelta(hours=TOKEN_HOURS)
        self._tokens.create_entity({"PartitionKey": EXPORT_PARTITION, "RowKey": token, "projectId": project.id,
                                    "expires": _iso(expires)})
        return {
            "iterationCount": len(self.store.iterations.all(project.id)),
            "imageCount": len(images),
            "tagCount": len(self.store.tags.all(project.id)),
            "regionCount": sum(len(image.regions) for image in images),
            "estimatedImportTimeInMS": 500 + _ESTIMATED_MS_PER_IMAGE * len(images),
            "token": token,
        }

    def _forget_expired(self) -> None:
        """Expired tokens are deleted by the next export."""
        now = _iso(utc_now())
        stale = self._tokens.query_entities("PartitionKey eq @p and expires lt @now",
                                            parameters={"p": EXPORT_PARTITION, "now": now},
                                            select=["PartitionKey", "RowKey"])
        for entity in stale:
            try:
                self._tokens.delete_entity(EXPORT_PARTITION, entity["RowKey"])
            except ResourceNotFoundError:
                pass

    def _source_of(self, token: str | None) -> ProjectRecord:
        token = (token or "").strip()
        if not _TOKEN.match(token):
            raise invalid_token()
        try:
            entity = self._tokens.get_entity(EXPORT_PARTITION, token)
        except ResourceNotFoundError:
            raise invalid_token() from None
        if str(entity.get("expires", "")) < _iso(utc_now()):
            raise invalid_token()
        source = self.store.projects.get(PROJECTS_PARTITION, str(entity.get("projectId", "")))
        if source is None or source.status != "Succeeded":
            raise invalid_token()
        return source

    # --- import
    def import_(self, token: str | None, name: str | None = None) -> ProjectRecord:
        """A new project copied from the token's project (named ``name``, or as the source)."""
        source = self._source_of(token)
        images = self.store.images.all(source.id)
        if len(images) > MAX_IMPORT_IMAGES:
            raise bad_request("BadRequestImageExceededCount", f"The exported project now has {len(images)} images; "
                              f"an import copies at most {MAX_IMPORT_IMAGES}. Copy it with "
                              "`python -m loupe.migrate customvision`.")
        created = self.projects.create(name if name and name.strip() else source.name, source.description,
                                       source.domain_id, source.classification_type,
                                       ",".join(source.target_export_platforms))
        try:
            self._set_status(created.id, "Importing", source)
            tag_ids = self._copy_tags(source.id, created.id)
            self._copy_images(images, created.id, tag_ids)
            return self._set_status(created.id, "Succeeded")
        except Exception:
            self.projects.delete(created.id)  # nothing half-written stays
            raise

    def _set_status(self, project_id: str, status: str, settings_of: ProjectRecord | None = None) -> ProjectRecord:
        copied = {} if settings_of is None else {
            "use_negative_set": settings_of.use_negative_set,
            "augmentation_methods": dict(settings_of.augmentation_methods),
            "export_model_container_uri": settings_of.export_model_container_uri,
            "notification_queue_uri": settings_of.notification_queue_uri}
        updated = self.store.projects.update(PROJECTS_PARTITION, project_id, lambda r: r.model_copy(
            update={**copied, "status": status, "last_modified": utc_now()}))
        if updated is None:  # deleted while importing
            raise not_found("NotFoundProject", f"Project '{project_id}' was deleted while it was being imported.")
        return updated

    def _copy_tags(self, source_id: str, target_id: str) -> dict[str, str]:
        """Source tag id -> the new tag's id (same name, description and type)."""
        mapping = {}
        for tag in sorted(self.store.tags.all(source_id), key=lambda t: t.created):
            mapping[tag.id] = self.projects.create_tag(target_id, tag.name, tag.description, tag.type).id
        return mapping

    def _copy_images(self, images: list[ImageRecord], target_id: str, tag_ids: dict[str, str]) -> None:
        """Every image, COPY_THREADS at a time; the first failure cancels what has not started and
        returns once the copies in flight are done (so the caller's clean-up deletes them too)."""
        with ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="cv-import") as pool:
            futures = [pool.submit(self._copy_image, image, target_id, tag_ids) for image in images]
            try:
                for future in futures:
                    future.result()
            except Exception:
                pool.shutdown(wait=True, cancel_futures=True)
                raise

    def _copy_image(self, image: ImageRecord, target_id: str, tag_ids: dict[str, str]) -> None:
        source = image_prefix(image.project_id, image.id)
        original = self.blobs.container.download_blob(source + "original")
        data = original.readall()
        new_id = image_id_for(target_id, data)
        target = image_prefix(target_id, new_id)
        # the blobs first: a record never points at missing blobs
        self._write(target + "original", data, original.properties.content_settings.content_type)
        for kind in _IMAGE_BLOBS[1:]:
            copy = self.blobs.container.download_blob(source + kind)
            self._write(target + kind, copy.readall(), copy.properties.content_settings.content_type)
        record = image.model_copy(update={
            "id": new_id, "project_id": target_id,
            "tags": [ImageTag(tag_id=tag_ids[t.tag_id], created=t.created) for t in image.tags if t.tag_id in tag_ids],
            "regions": [Region(region_id=str(uuid.uuid4()), tag_id=tag_ids[r.tag_id], left=r.left, top=r.top,
                               width=r.width, height=r.height, created=r.created)
                        for r in image.regions if r.tag_id in tag_ids],
            "metadata": dict(image.metadata)})
        try:
            self.store.images.create(record)
        except AlreadyExists:  # two source images with the same bytes: one image, as an upload would make
            pass

    def _write(self, blob_name: str, data: bytes, content_type: str | None) -> None:
        settings = ContentSettings(content_type=content_type) if content_type else None
        self.blobs.container.upload_blob(blob_name, data, overwrite=True, content_settings=settings)

    # --- artifacts
    def artifact_blob(self, project_id: str, path: str | None) -> str:
        """The blob name of an artifact given by its path relative to the project's folder."""
        project = self.projects.get(project_id)
        path = path or ""
        segments = path.split("/")
        if (not path or len(path) > 1024 or path.startswith("/") or "\\" in path or ":" in segments[0]
                or any(s in ("", ".", "..") for s in segments) or not path.isprintable()):
            raise bad_request("BadRequestInvalidArtifactUri", f"'{shown(path)}' is not an artifact path: give a "
                              "path relative to the project, such as images/<imageId>/original, without '..', "
                              "empty segments, a leading '/' or '\\'.")
        return f"{project.id}/{path}"

    def artifact(self, project_id: str, path: str | None) -> tuple[Any, str]:
        """The artifact's blob download (its ``chunks()`` stream it) and its content type."""
        blob_name = self.artifact_blob(project_id, path)
        try:
            download = self.blobs.container.download_blob(blob_name)
        except ResourceNotFoundError:
            raise not_found("NotFound", f"Artifact '{shown(path or '')}' was not found.") from None
        content_type = download.properties.content_settings.content_type or "application/octet-stream"
        return download, content_type
