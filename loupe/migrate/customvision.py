"""Copy Custom Vision projects between endpoints with the Custom Vision SDK (training clients) on
both sides: the project (name, description, domain, classification type, export platforms), its
tags, and its images with their image tags, regions (tag ids mapped) and metadata.

A rerun copies nothing twice: the target project carries a marker naming its source project in
its description, tags are matched by name, and every copied image carries its source image's id
in the metadata key ``loupe.sourceImageId``; images with that marker are not downloaded again. An
image uploaded but not yet marked (an interrupted run) is uploaded again: Custom Vision answers
``OKDuplicate`` for the same bytes, and the marker is added then.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import requests
from azure.cognitiveservices.vision.customvision.training.models import (
    ImageFileCreateBatch,
    ImageFileCreateEntry,
    Region,
)
from msrest.exceptions import ClientRequestError, HttpOperationError
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from loupe.migrate.progress import Progress

SOURCE_ID_KEY = "loupe.sourceImageId"  # on every copied image: its source image's id
MARKER_START = "[copied from Custom Vision project "  # in a copy's description, then the source's id
PAGE = 256  # the most images one listing call returns
MAX_BATCH_IMAGES = 64  # Custom Vision's batch limit
MAX_BATCH_BYTES = 48 * 1024 * 1024  # and a bound on one request's body (base64 adds a third)
MAX_DESCRIPTION = 4096
MAX_METADATA_ENTRIES = 50
DOWNLOAD_THREADS = 8
THROTTLE_RETRIES = 6  # 429s: Azure's training API allows a few calls per second


class MigrationError(Exception):
    """Stops the migration; its message is what the command prints."""


def marker(source_project_id: str) -> str:
    """What the description of a copy carries: it finds the copy again on a rerun."""
    return f"{MARKER_START}{source_project_id}]"


def _status(exc: HttpOperationError) -> int:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", 0) or 0


def _code(exc: HttpOperationError) -> str:
    error = getattr(exc, "error", None)
    return str(getattr(error, "code", "") or "")


class Endpoint:
    """One side of the migration: its training client, with throttling retried and a rejected
    key or an unreachable endpoint turned into a MigrationError that says which side."""

    def __init__(self, role: str, client: Any, url: str) -> None:
        self.role, self.client, self.url = role, client, url

    def call(self, operation: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        for attempt in range(THROTTLE_RETRIES + 1):
            try:
                return operation(*args, **kwargs)
            except HttpOperationError as exc:
                status = _status(exc)
                if status in (401, 403):
                    raise MigrationError(f"the {self.role} rejected the key (HTTP {status} from {self.url})") from None
                if status != 429 or attempt == THROTTLE_RETRIES:
                    raise
                retry_after = exc.response.headers.get("Retry-After", "")
                time.sleep(float(retry_after) if retry_after.isdigit() else min(2.0 ** attempt, 30.0))
            except ClientRequestError as exc:
                raise MigrationError(f"the {self.role} at {self.url} cannot be reached: {exc}") from None
        raise AssertionError("unreachable")

    def pages(self, operation: Callable[..., list], *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Every item of a listing, PAGE at a time (oldest first: pages stay put while we read)."""
        skip = 0
        while True:
            found = self.call(operation, *args, take=PAGE, skip=skip, **kwargs) or []
            yield from found
            if len(found) < PAGE:
                return
            skip += len(found)


@dataclass
class ProjectOutcome:
    source_id: str
    name: str
    target_id: str = ""
    created: bool = False
    copied: int = 0
    already: int = 0
    failed: list[str] = field(default_factory=list)  # "<source image id>: why"
    training: str = ""  # what --train did
    training_started: bool = True

    @property
    def ok(self) -> bool:
        return not self.failed and self.training_started

    def line(self) -> str:
        made = "created" if self.created else "existing"
        text = (f"project '{self.name}' ({self.source_id}) -> {self.target_id} ({made}): {self.copied} images "
                f"copied, {self.already} already there, {len(self.failed)} failed")
        return text + (f"; {self.training}" if self.training else "")


def download_session() -> requests.Session:
    """Image downloads retry throttling and passing server errors."""
    session = requests.Session()
    retry = Retry(total=5, backoff_factor=1.0, status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=frozenset({"GET"}))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


class Migration:
    def __init__(self, source: Endpoint, target: Endpoint, *, train: bool = False,
                 progress: Callable[[int, str], Progress], say: Callable[[str], None] = print,
                 session: requests.Session | None = None) -> None:
        self.source, self.target = source, target
        self.train = train
        self.progress = progress
        self.say = say
        self.session = session or download_session()
        self._target_domains: dict[str, Any] | None = None

    def run(self, project_ids: list[str] | None = None) -> list[ProjectOutcome]:
        """Copy the given projects (all of the source's when None); checks both keys first."""
        projects = self.source.call(self.source.client.get_projects)
        existing = self.target.call(self.target.client.get_projects)
        if project_ids:
            by_id = {p.id.lower(): p for p in projects}
            missing = [p for p in project_ids if p.lower() not in by_id]
            if missing:
                raise MigrationError(f"the source has no project {', '.join(missing)}")
            projects = [by_id[p.lower()] for p in dict.fromkeys(project_ids)]
        else:  # the source may be the target itself: its copies are not copied again
            copies = {p.id for p in existing if MARKER_START in (p.description or "")}
            projects = [p for p in projects if p.id not in copies]
        outcomes = []
        for project in projects:
            outcome = self.copy_project(project, existing)
            self.say(outcome.line())
            outcomes.append(outcome)
        return outcomes

    def copy_project(self, project: Any, existing: list[Any]) -> ProjectOutcome:
        outcome = ProjectOutcome(project.id, project.name)
        target = self._target_project(project, existing, outcome)
        outcome.target_id = target.id
        tags = self._tags(project.id, target.id)
        done = self._copied_ids(target.id)
        bar = self.progress(self.source.call(self.source.client.get_image_count, project.id), project.name)
        try:
            pending: list[Any] = []
            for image in self.source.pages(self.source.client.get_images, project.id, order_by="Oldest"):
                if image.id in done:
                    outcome.already += 1
                    bar.update(1)
                    continue
                pending.append(image)
                if len(pending) == MAX_BATCH_IMAGES:
                    self._copy(target.id, pending, tags, outcome, bar)
                    pending = []
            if pending:
                self._copy(target.id, pending, tags, outcome, bar)
        finally:
            bar.close()
        if self.train and not outcome.failed:
            outcome.training, outcome.training_started = self._train(target.id)
        return outcome

    # --- the project and its tags
    def _target_project(self, project: Any, existing: list[Any], outcome: ProjectOutcome) -> Any:
        mark = marker(project.id)
        matches = [p for p in existing if mark in (p.description or "")]
        if matches:  # a rerun: the project copied before (the one of the same name first)
            return sorted(matches, key=lambda p: p.name != project.name)[0]
        settings = project.settings
        description = (project.description or "").strip()
        description = f"{description[:MAX_DESCRIPTION - len(mark) - 1]} {mark}".strip()
        created = self.target.call(
            self.target.client.create_project, project.name, description=description,
            domain_id=self._domain(settings.domain_id), classification_type=settings.classification_type,
            target_export_platforms=list(settings.target_export_platforms or []) or None)
        outcome.created = True
        existing.append(created)
        return created

    def _domain(self, domain_id: str) -> str:
        """The source's domain on the target: the same id, else the target's domain of the same
        type and name (a retired or regional domain), else its General domain of that type."""
        if self._target_domains is None:
            self._target_domains = {d.id: d for d in self.target.call(self.target.client.get_domains)}
        if domain_id in self._target_domains:
            return domain_id
        wanted = self.source.call(self.source.client.get_domain, domain_id)
        same_type = [d for d in self._target_domains.values() if d.type == wanted.type]
        for choice in ([d for d in same_type if d.name == wanted.name], [d for d in same_type if d.name == "General"]):
            if choice:
                return choice[0].id
        raise MigrationError(f"the target has no {wanted.type} domain to copy the domain '{wanted.name}' to")

    def _tags(self, source_id: str, target_id: str) -> dict[str, str]:
        """Source tag id -> target tag id, creating the tags the target lacks (matched by name)."""
        by_name = {t.name.casefold(): t for t in self.target.call(self.target.client.get_tags, target_id)}
        mapping = {}
        for tag in self.source.call(self.source.client.get_tags, source_id):
            found = by_name.get(tag.name.casefold())
            if found is None:
                found = self.target.call(self.target.client.create_tag, target_id, tag.name,
                                         description=tag.description or None, type=tag.type or "Regular")
            mapping[tag.id] = found.id
        return mapping

    # --- images
    def _copied_ids(self, target_id: str) -> set[str]:
        """The source image ids the target's images were copied from (their marker)."""
        return {image.metadata[SOURCE_ID_KEY]
                for image in self.target.pages(self.target.client.get_images, target_id, order_by="Oldest")
                if image.metadata and SOURCE_ID_KEY in image.metadata}

    def _copy(self, target_id: str, images: list[Any], tags: dict[str, str], outcome: ProjectOutcome,
              bar: Progress) -> None:
        """Up to a batch of images: downloaded DOWNLOAD_THREADS at a time, then uploaded in
        batches of at most MAX_BATCH_BYTES."""
        with ThreadPoolExecutor(DOWNLOAD_THREADS, thread_name_prefix="migrate-download") as pool:
            downloads = list(pool.map(lambda image: self._download(image, outcome), images))
        batch: list[tuple[Any, bytes]] = []
        for image, data in zip(images, downloads):
            if data is None:
                bar.update(1)
                continue
            if batch and sum(len(d) for _, d in batch) + len(data) > MAX_BATCH_BYTES:
                self._upload(target_id, batch, tags, outcome, bar)
                batch = []
            batch.append((image, data))
        if batch:
            self._upload(target_id, batch, tags, outcome, bar)

    def _download(self, image: Any, outcome: ProjectOutcome) -> bytes | None:
        try:
            response = self.session.get(image.original_image_uri, timeout=120)
            response.raise_for_status()
        except requests.RequestException as exc:
            outcome.failed.append(f"{image.id}: the download failed ({exc.__class__.__name__}: "
                                  f"{str(exc).split('?', 1)[0][:200]})")  # never print a link's token
            return None
        return response.content

    @staticmethod
    def _entry(image: Any, data: bytes, tags: dict[str, str]) -> ImageFileCreateEntry:
        regions = [Region(tag_id=tags[r.tag_id], left=r.left, top=r.top, width=r.width, height=r.height)
                   for r in image.regions or [] if r.tag_id in tags]
        boxed = {r.tag_id for r in image.regions or []}
        # a detection image's region tags are not image tags of their own
        tag_ids = [tags[t.tag_id] for t in image.tags or [] if t.tag_id in tags and t.tag_id not in boxed]
        return ImageFileCreateEntry(name=image.id, contents=data, tag_ids=tag_ids or None, regions=regions or None)

    def _upload(self, target_id: str, batch: list[tuple[Any, bytes]], tags: dict[str, str],
                outcome: ProjectOutcome, bar: Progress) -> None:
        client = self.target.client
        entries = ImageFileCreateBatch(images=[self._entry(image, data, tags) for image, data in batch])
        try:
            summary = self.target.call(client.create_images_from_files, target_id, entries)
        except HttpOperationError as exc:  # every image of the batch failed
            outcome.failed += [f"{image.id}: {_code(exc) or _status(exc)} {exc}" for image, _ in batch]
            bar.update(len(batch))
            return
        for (image, _), result in zip(batch, summary.images):
            if result.status in ("OK", "OKDuplicate") and result.image is not None:
                self._mark(target_id, image, result.image.id, outcome)
            else:
                outcome.failed.append(f"{image.id}: the target answered {result.status}")
            bar.update(1)

    def _mark(self, target_id: str, image: Any, target_image_id: str, outcome: ProjectOutcome) -> None:
        """The source's metadata and the marker; the marker makes the copy count as done."""
        metadata = dict(image.metadata or {})
        if len(metadata) < MAX_METADATA_ENTRIES:
            metadata[SOURCE_ID_KEY] = image.id
        try:
            self.target.call(self.target.client.update_image_metadata, target_id, [target_image_id], metadata)
        except HttpOperationError as exc:
            outcome.failed.append(f"{image.id}: its metadata was refused ({_code(exc) or _status(exc)})")
            return
        outcome.copied += 1

    def _train(self, target_id: str) -> tuple[str, bool]:
        """What happened, and whether that is fine (a project unchanged since its last training is)."""
        try:
            iteration = self.target.call(self.target.client.train_project, target_id)
        except HttpOperationError as exc:
            if _code(exc) == "BadRequestTrainingNotNeeded":
                return "no training needed", True
            return f"training was not started: {_code(exc) or _status(exc)} {exc}", False
        return f"training started (iteration {iteration.id})", True
