"""Projects and tags (docs/customvision.md#projects): create, read, update, delete.

A project's domain decides classification or detection; ``classificationType`` (Multiclass or
Multilabel) belongs to classification projects and is what training uses, never a guess from the
labels. Deleting a project removes everything it owns: rows, image blobs, snapshots, and the
Loupe models and datasets its iterations trained.
"""
from __future__ import annotations

import uuid
from collections import Counter
from typing import Callable

from loupe.customvision import wire
from loupe.customvision.blobs import ImageBlobs, image_prefix
from loupe.customvision.domains import DEFAULT_DOMAIN, Domain, find_domain
from loupe.customvision.errors import bad_request, unknown_project, unknown_tag
from loupe.customvision.records import ProjectRecord, TagRecord
from loupe.customvision.store import PROJECTS_PARTITION, CustomVisionStore
from loupe.errors import shown, text_problem
from loupe.storage.entities import utc_now
from loupe.storage.table_store import AlreadyExists

MAX_NAME = 1024
MAX_DESCRIPTION = 4096
MAX_TAGS_PER_PROJECT = 500
MAX_PROJECTS = 1000
TAG_TYPES = {"regular": "Regular", "negative": "Negative", "generalproduct": "GeneralProduct"}
CLASSIFICATION_TYPES = {"multiclass": "Multiclass", "multilabel": "Multilabel"}


def check_text(value: str | None, what: str, code: str, limit: int, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise bad_request(code, f"The {what} is required.")
    if len(value) > limit:
        raise bad_request(code, f"The {what} is {len(value)} characters long; at most {limit} are allowed.")
    problem = text_problem(value)
    if problem:
        raise bad_request(code, f"The {what} '{shown(value)}' {problem}.")
    return value


def parse_id(value: str, what: str, code: str) -> str:
    """A GUID from a query or body (ids are lower-case GUIDs); anything else is a 400."""
    try:
        return str(uuid.UUID(value.strip()))
    except (ValueError, AttributeError):
        raise bad_request(code, f"'{shown(str(value))}' is not a valid {what} id (a GUID).") from None


class ProjectService:
    def __init__(self, store: CustomVisionStore, blobs: ImageBlobs,
                 on_delete: Callable[[ProjectRecord], None] = lambda project: None) -> None:
        self.store = store
        self.blobs = blobs
        # what else forgets a deleted project (its iterations' models and datasets)
        self.on_delete = on_delete

    # --- projects
    def get(self, project_id: str) -> ProjectRecord:
        record = self.store.projects.get(PROJECTS_PARTITION, project_id.lower())
        if record is None:
            raise unknown_project(project_id)
        return record

    def domain(self, project: ProjectRecord) -> Domain:
        return find_domain(project.domain_id) or DEFAULT_DOMAIN

    def list(self) -> list[ProjectRecord]:
        return sorted(self.store.projects.all(PROJECTS_PARTITION), key=lambda p: p.created)

    def create(self, name: str | None, description: str | None = None, domain_id: str | None = None,
               classification_type: str | None = None, target_export_platforms: str | None = None,
               options: dict | None = None) -> ProjectRecord:
        name = check_text(name, "project name", "BadRequestProjectName", MAX_NAME)
        description = check_text(description, "project description", "BadRequestProjectDescription",
                                 MAX_DESCRIPTION, required=False)
        domain = DEFAULT_DOMAIN
        if domain_id:
            found = find_domain(domain_id)
            if found is None:
                raise bad_request("BadRequestProjectUnknownDomain", f"Domain '{shown(domain_id)}' is not known; "
                                  "GET /training/domains lists them.")
            domain = found
        ctype = self._classification_type(classification_type, domain)
        platforms = [p.strip() for p in (target_export_platforms or "").split(",") if p.strip()]
        if len(self.store.projects.all(PROJECTS_PARTITION)) >= MAX_PROJECTS:
            raise bad_request("BadRequestExceedProjectLimit", f"At most {MAX_PROJECTS} projects are allowed.")
        options = options or {}
        record = ProjectRecord(id=str(uuid.uuid4()), name=name, description=description, domain_id=domain.id,
                               classification_type=ctype, target_export_platforms=platforms,
                               export_model_container_uri=options.get("exportModelContainerUri"),
                               notification_queue_uri=options.get("notificationQueueUri"))
        return self.store.projects.create(record)

    @staticmethod
    def _classification_type(value: str | None, domain: Domain) -> str | None:
        if domain.is_detection:
            return None
        if not value:
            return "Multiclass"
        found = CLASSIFICATION_TYPES.get(value.strip().lower())
        if found is None:
            raise bad_request("BadRequestProjectUnknownClassification",
                              f"classificationType '{shown(value)}' is not Multiclass or Multilabel.")
        return found

    def update(self, project_id: str, body: dict) -> ProjectRecord:
        current = self.get(project_id)
        settings = body.get("settings") or {}
        if not isinstance(settings, dict):
            raise bad_request("BadRequest", "settings must be an object.")
        changes: dict = {}
        if body.get("name") is not None:
            changes["name"] = check_text(body["name"], "project name", "BadRequestProjectName", MAX_NAME)
        if body.get("description") is not None:
            changes["description"] = check_text(body["description"], "project description",
                                                "BadRequestProjectDescription", MAX_DESCRIPTION, required=False)
        domain = self.domain(current)
        if settings.get("domainId"):
            found = find_domain(str(settings["domainId"]))
            if found is None:
                raise bad_request("BadRequestProjectUnknownDomain", f"Domain '{shown(str(settings['domainId']))}' "
                                  "is not known.")
            if found.is_detection != domain.is_detection:
                raise bad_request("BadRequestProjectUnsupportedDomainTypeChange",
                                  "A project cannot change between classification and detection domains.")
            domain = found
            changes["domain_id"] = found.id
        if settings.get("classificationType"):
            changes["classification_type"] = self._classification_type(str(settings["classificationType"]), domain)
        if isinstance(settings.get("targetExportPlatforms"), list):
            changes["target_export_platforms"] = [str(p) for p in settings["targetExportPlatforms"]][:16]
        if isinstance(settings.get("useNegativeSet"), bool):
            changes["use_negative_set"] = settings["useNegativeSet"]

        def apply(record: ProjectRecord) -> ProjectRecord:
            return record.model_copy(update={**changes, "last_modified": utc_now()})

        updated = self.store.projects.update(PROJECTS_PARTITION, current.id, apply)
        if updated is None:
            raise unknown_project(project_id)
        return updated

    def delete(self, project_id: str) -> None:
        project = self.get(project_id)
        self.on_delete(project)
        self.store.delete_project_rows(project.id)
        self.blobs.delete_prefix(f"{project.id}/")

    def wire(self, project: ProjectRecord) -> dict:
        return wire.project(project)

    # --- tags
    def tag(self, project_id: str, tag_id: str) -> TagRecord:
        project = self.get(project_id)
        record = self.store.tags.get(project.id, tag_id.lower())
        if record is None:
            raise unknown_tag(tag_id)
        return record

    def tags(self, project_id: str) -> list[TagRecord]:
        project = self.get(project_id)
        return sorted(self.store.tags.all(project.id), key=lambda t: t.created)

    def tag_counts(self, project_id: str) -> Counter:
        """Images per tag (an image counts once per tag, through image tags or regions)."""
        counts: Counter = Counter()
        for image in self.store.images.all(project_id):
            counts.update(image.tag_ids())
        return counts

    def create_tag(self, project_id: str, name: str | None, description: str | None = None,
                   tag_type: str | None = None) -> TagRecord:
        project = self.get(project_id)
        name = check_text(name, "tag name", "BadRequestTagName", 256)
        description = check_text(description, "tag description", "BadRequestTagDescription", MAX_DESCRIPTION,
                                 required=False)
        kind = TAG_TYPES.get((tag_type or "Regular").strip().lower())
        if kind is None:
            raise bad_request("BadRequestTagType", f"Tag type '{shown(tag_type or '')}' is not Regular, Negative "
                              "or GeneralProduct.")
        existing = self.store.tags.all(project.id)
        if kind == "Negative" and any(t.type == "Negative" for t in existing):
            raise bad_request("BadRequestMultipleNegativeTag",
                              "The project already has a Negative tag; a project has at most one.")
        if len(existing) >= MAX_TAGS_PER_PROJECT:
            raise bad_request("BadRequestExceedTagPerProjectLimit", f"A project has at most {MAX_TAGS_PER_PROJECT} tags.")
        record = TagRecord(id=str(uuid.uuid4()), project_id=project.id, name=name, description=description,
                           type=kind)
        try:
            self.store.claim_tag_name(project.id, name, record.id)
        except AlreadyExists:
            raise bad_request("BadRequestTagNameNotUnique", f"The project already has a tag named "
                              f"'{shown(name)}'; tag names are unique (case-insensitively).") from None
        return self.store.tags.create(record)

    def update_tag(self, project_id: str, tag_id: str, body: dict) -> TagRecord:
        current = self.tag(project_id, tag_id)
        name = current.name
        if body.get("name") is not None:
            name = check_text(str(body["name"]), "tag name", "BadRequestTagName", 256)
        description = current.description
        if body.get("description") is not None:
            description = check_text(str(body["description"]), "tag description", "BadRequestTagDescription",
                                     MAX_DESCRIPTION, required=False)
        kind = current.type
        if body.get("type") is not None:
            kind = TAG_TYPES.get(str(body["type"]).strip().lower())
            if kind is None:
                raise bad_request("BadRequestTagType", f"Tag type '{shown(str(body['type']))}' is not Regular, "
                                  "Negative or GeneralProduct.")
        renamed = name.casefold() != current.name.casefold()
        if renamed:
            try:
                self.store.claim_tag_name(current.project_id, name, current.id)
            except AlreadyExists:
                raise bad_request("BadRequestTagNameNotUnique", f"The project already has a tag named "
                                  f"'{shown(name)}'.") from None
        updated = self.store.tags.update(current.project_id, current.id,
                                         lambda r: r.model_copy(update={"name": name, "description": description,
                                                                        "type": kind}))
        if updated is None:
            raise unknown_tag(tag_id)
        if renamed:
            self.store.release_tag_name(current.project_id, current.name, current.id)
        return updated

    def delete_tag(self, project_id: str, tag_id: str) -> None:
        """The tag and every image tag and region that uses it."""
        tag = self.tag(project_id, tag_id)

        def strip(image):
            if tag.id not in image.tag_ids():
                return None
            return image.model_copy(update={"tags": [t for t in image.tags if t.tag_id != tag.id],
                                            "regions": [r for r in image.regions if r.tag_id != tag.id]})

        for image in self.store.images.all(tag.project_id):
            if tag.id in image.tag_ids():
                self.store.images.update(tag.project_id, image.id, strip)
        self.store.tags.delete(tag.project_id, tag.id)
        self.store.release_tag_name(tag.project_id, tag.name, tag.id)

    def thumbnail_prefix(self, project_id: str, image_id: str) -> str:
        return image_prefix(project_id, image_id)
