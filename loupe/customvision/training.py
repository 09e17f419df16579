"""Iterations (docs/customvision.md#training): training, status, publishing, deletion.

``train`` snapshots the project's labelled images into an Azure COCO file, registers it as a Loupe
dataset and creates a Loupe model on it: from there on everything is the existing pipeline (the
same JobSpec, backends, trainer, reconciler). The iteration keeps the names of both; its status is
the model's in Custom Vision's words (``Training``, then ``Completed`` or ``Failed``: clients loop
until ``Completed``), copied into the iteration once final.
"""
from __future__ import annotations

import json
import logging
import math
import uuid
from typing import Callable

from loupe.artifacts import HOLDOUT_FILE, LABELS_FILE, Holdout, holdout_from_json, labels_from_json
from loupe.customvision import limits
from loupe.customvision.blobs import ImageBlobs
from loupe.customvision.errors import bad_request, unknown_iteration
from loupe.customvision.performance import image_predictions, iteration_performance, truth_tags
from loupe.customvision.projects import ProjectService, check_text
from loupe.customvision.records import IterationRecord, ProjectRecord
from loupe.customvision.snapshot import build_snapshot
from loupe.customvision.store import CustomVisionStore
from loupe.datasets.requests import DatasetIn
from loupe.datasets.service import DatasetService
from loupe.enums import AnnotationKind, ModelKind
from loupe.errors import ServiceError, shown
from loupe.models.requests import ModelIn, TrainingParametersIn
from loupe.models.service import ModelService
from loupe.runs.record import RunStatus
from loupe.storage.entities import utc_now

log = logging.getLogger(__name__)

TRAINING = "Training"
COMPLETED = "Completed"
FAILED = "Failed"
MAX_BUDGET_HOURS = 24 * 7
PUBLISH_NAME_CHARS = 256
# how long train() may take between writing an iteration and creating its model (image checks)
STARTING_SECONDS = 600


def model_name_of(iteration_id: str) -> str:
    """The Loupe model (and dataset) an iteration trains: reachable under /computervision too."""
    return f"customvision-{iteration_id}"


def snapshot_blob(project_id: str, iteration_id: str) -> str:
    return f"{project_id}/iterations/{iteration_id}/train.json"


class IterationService:
    def __init__(self, store: CustomVisionStore, blobs: ImageBlobs, projects: ProjectService,
                 datasets: Callable[[], DatasetService], models: Callable[[], ModelService]) -> None:
        self.store = store
        self.blobs = blobs
        self.projects = projects
        # built on first use: reading projects and images needs no job backend
        self._datasets = datasets
        self._models = models
        # told when what a publish name points at changes (the prediction side's cache)
        self.on_publication: Callable[[str], None] = lambda project_id: None

    # --- reads
    def get(self, project_id: str, iteration_id: str) -> IterationRecord:
        project = self.projects.get(project_id)
        record = self.store.iterations.get(project.id, iteration_id.strip().lower())
        if record is None:
            raise unknown_iteration(iteration_id)
        return self.refresh(record)

    def list(self, project_id: str) -> list[IterationRecord]:
        project = self.projects.get(project_id)
        return sorted((self.refresh(r) for r in self.store.iterations.all(project.id)), key=lambda r: r.created)

    def status(self, record: IterationRecord) -> str:
        return record.status or TRAINING

    def refresh(self, record: IterationRecord) -> IterationRecord:
        """The iteration with its model's outcome copied in once the model run is final."""
        if record.status in (COMPLETED, FAILED):
            return record
        stored = self._models().repo.find(record.model_name)
        model = stored.value if stored else None
        if model is not None and not model.status.is_terminal:
            return record
        if model is None and (utc_now() - record.created).total_seconds() < STARTING_SECONDS:
            return record  # train() is still creating the model
        changes: dict = {"last_modified": utc_now()}
        if model is not None and model.status is RunStatus.SUCCEEDED:
            changes.update(status=COMPLETED, trained_at=model.updated,
                           training_time_minutes=max(1, math.ceil(model.run_seconds / 60)))
        else:
            reason = "the model run was deleted" if model is None else (
                (model.error or {}).get("message") or f"training ended {model.status.value}")
            changes.update(status=FAILED, training_error=str(reason)[:2000])
        updated = self.store.iterations.update(record.project_id, record.id,
                                               lambda r: None if r.status else r.model_copy(update=changes))
        return updated or record

    # --- training
    def train(self, project_id: str, training_type: str | None = None, budget_hours: int = 0,
              force: bool = False, selected_tags: list[str] | None = None) -> IterationRecord:
        project = self.projects.get(project_id)
        kind = self._training_type(training_type)
        if kind == "Advanced" and not 1 <= budget_hours <= MAX_BUDGET_HOURS:
            raise bad_request("BadRequestReservedBudgetInHoursNotEnoughForAdvancedTraining",
                              f"Advanced training needs reservedBudgetInHours from 1 to {MAX_BUDGET_HOURS}.")
        iterations = self.list(project.id)
        if any(self.status(i) == TRAINING for i in iterations):
            raise bad_request("BadRequestTrainingAlreadyInProgress", "The project is already training; wait for "
                              "the iteration to complete.")
        if len(iterations) >= limits.MAX_ITERATIONS:
            raise bad_request("BadRequestExceedIterationPerProjectLimit", f"A project keeps at most "
                              f"{limits.MAX_ITERATIONS} iterations; delete one to train again.")
        detection = self.projects.domain(project).is_detection
        tags = self.store.tags.all(project.id)
        selected = self._selected(selected_tags or [], {t.id for t in tags})
        snap = build_snapshot(project, detection, tags, self.store.images.all(project.id), self.blobs, selected)
        completed = [i for i in iterations if i.status == COMPLETED]
        if not force and completed and completed[-1].fingerprint == snap.fingerprint:
            raise bad_request("BadRequestTrainingNotNeeded", "Nothing changed since the last iteration; pass "
                              "forceTrain=true to train again anyway.")
        iteration_id = str(uuid.uuid4())
        record = IterationRecord(
            id=iteration_id, project_id=project.id, name=f"Iteration {len(iterations) + 1}",
            domain_id=project.domain_id, classification_type=project.classification_type, training_type=kind,
            reserved_budget_in_hours=budget_hours if kind == "Advanced" else 0,
            model_name=model_name_of(iteration_id), dataset_name=model_name_of(iteration_id),
            selected_tags=selected, fingerprint=snap.fingerprint, image_count=len(snap.image_ids),
            tag_names=snap.tag_names)
        self.blobs.put(snapshot_blob(project.id, iteration_id), json.dumps(snap.coco).encode(), "application/json")
        self.store.iterations.create(record)
        try:
            self._start(project, record, detection, max(1, budget_hours) if kind == "Advanced" else 1)
        except Exception:
            self._forget(record)
            raise
        return record

    def _start(self, project: ProjectRecord, record: IterationRecord, detection: bool, hours: int) -> None:
        kind = AnnotationKind.DETECTION if detection else AnnotationKind.CLASSIFICATION
        uri = self.blobs.url(snapshot_blob(project.id, record.id))
        try:
            dataset = self._datasets().register(record.dataset_name, DatasetIn(
                annotation_kind=kind, annotation_file_uris=[uri]))
            if not dataset.usable_for_training:
                first = dataset.validation.first_problem() if dataset.validation else ""
                raise bad_request("BadRequestTrainingValidationFailed", f"The project's images did not validate "
                                  f"for training{first}")
            # a compact domain is the exportable one, as on Azure: its detector trains on stretched
            # images, as the export packages take them (docs/exports.md#letterbox-trained-detectors)
            self._models().create(record.model_name, ModelIn(training_parameters=TrainingParametersIn(
                training_dataset_name=record.dataset_name, time_budget_in_hours=hours,
                model_kind=ModelKind.DETECTOR if detection else ModelKind.CLASSIFIER)),
                multilabel=None if detection else project.classification_type == "Multilabel",
                exportable=self.projects.domain(project).exportable)
        except ServiceError as exc:
            if exc.status >= 500 or exc.__class__ is not ServiceError:
                raise
            raise bad_request("BadRequestTrainingValidationFailed", exc.message) from None

    @staticmethod
    def _training_type(value: str | None) -> str:
        found = {"regular": "Regular", "advanced": "Advanced"}.get((value or "Regular").strip().lower())
        if found is None:
            raise bad_request("BadRequestInvalid", f"trainingType '{shown(value or '', 32)}' is not Regular or Advanced.")
        return found

    @staticmethod
    def _selected(values: list, known: set[str]) -> list[str]:
        out = []
        for value in values:
            tag = str(value).strip().lower()
            if tag not in known:
                raise bad_request("BadRequestInvalidIds",
                                  f"selectedTags: '{shown(str(value), 64)}' is not a tag of this project.")
            out.append(tag)
        return sorted(set(out))

    # --- changes
    def update(self, project_id: str, iteration_id: str, body: dict) -> IterationRecord:
        current = self.get(project_id, iteration_id)
        name = check_text(body.get("name"), "iteration name", "BadRequestIterationName", 1024)
        updated = self.store.iterations.update(current.project_id, current.id, lambda r: r.model_copy(
            update={"name": name, "last_modified": utc_now()}))
        if updated is None:
            raise unknown_iteration(iteration_id)
        return updated

    def delete(self, project_id: str, iteration_id: str) -> None:
        record = self.get(project_id, iteration_id)
        if record.publish_name:
            raise bad_request("BadRequestIterationIsPublished", f"Iteration '{record.id}' is published as "
                              f"'{record.publish_name}'; unpublish it first.")
        if self.status(record) == TRAINING:
            self._models().cancel(record.model_name)
        self._forget(record)

    def _forget(self, record: IterationRecord) -> None:
        """The iteration's row, snapshot, model and dataset (best effort beyond the row: a model that is
        still stopping is deleted by the next call)."""
        self.store.iterations.delete(record.project_id, record.id)
        self.on_publication(record.project_id)
        self.blobs.delete_prefix(f"{record.project_id}/iterations/{record.id}/")
        for step in (lambda: self._models().delete(record.model_name),
                     lambda: self._datasets().delete(record.dataset_name, None)):
            try:
                step()
            except ServiceError as exc:
                log.info("iteration %s: %s", record.id, exc.message)

    def forget_project(self, project: ProjectRecord) -> None:
        for record in self.store.iterations.all(project.id):
            if self.status(self.refresh(record)) == TRAINING:
                try:
                    self._models().cancel(record.model_name)
                except ServiceError:
                    pass
            self._forget(record)

    # --- publishing
    def publish(self, project_id: str, iteration_id: str, publish_name: str | None, prediction_id: str | None,
                overwrite: bool = False) -> bool:
        record = self.get(project_id, iteration_id)
        name = (publish_name or "").strip()
        if not name or len(name) > PUBLISH_NAME_CHARS or any(c in name for c in "/\\?#") or not name.isprintable():
            raise bad_request("BadRequestInvalidPublishName", f"Publish name '{shown(name, 64)}' is not valid: 1 to "
                              f"{PUBLISH_NAME_CHARS} printable characters, without / \\ ? #.")
        if not (prediction_id or "").strip():
            raise bad_request("BadRequestInvalidPublishTarget", "predictionId (the prediction resource's id) is "
                              "required.")
        if self.status(record) != COMPLETED:
            raise bad_request("BadRequestIterationIsNotTrained", f"Iteration '{record.id}' is "
                              f"{self.status(record)}; only a Completed iteration can be published.")
        if record.publish_name == name:
            return True  # a repeat publish under the same name (the classification quickstart does it)
        others = [i for i in self.store.iterations.all(record.project_id) if i.publish_name == name and i.id != record.id]
        if others and not overwrite:
            raise bad_request("BadRequestInvalidPublishName", f"Another iteration of the project is published as "
                              f"'{shown(name, 64)}'; unpublish it or pass overwrite=true.")
        for other in others:
            self.store.iterations.update(other.project_id, other.id, lambda r: r.model_copy(
                update={"publish_name": None, "prediction_resource_id": None}))
        self.store.iterations.update(record.project_id, record.id, lambda r: r.model_copy(
            update={"publish_name": name, "prediction_resource_id": prediction_id.strip()[:1024],
                    "last_modified": utc_now()}))
        self.on_publication(record.project_id)
        return True

    def unpublish(self, project_id: str, iteration_id: str) -> None:
        record = self.get(project_id, iteration_id)
        if not record.publish_name:
            raise bad_request("BadRequestIterationNotPublished", f"Iteration '{record.id}' is not published.")
        self.store.iterations.update(record.project_id, record.id, lambda r: r.model_copy(
            update={"publish_name": None, "prediction_resource_id": None, "last_modified": utc_now()}))
        self.on_publication(record.project_id)

    def published(self, project_id: str, publish_name: str) -> IterationRecord | None:
        project = self.projects.get(project_id)
        for record in self.store.iterations.all(project.id):
            if record.publish_name == publish_name:
                return self.refresh(record)
        return None

    def image_ids(self, project_id: str, iteration_id: str) -> set[str]:
        """The images an iteration trained on (the file names of its snapshot are the image ids)."""
        record = self.get(project_id, iteration_id)
        coco = json.loads(self.blobs.read(snapshot_blob(record.project_id, record.id)))
        return {image["file_name"].rsplit(".", 1)[0] for image in coco["images"]}

    # --- performance (docs/customvision.md#performance)
    def trained(self, project_id: str, iteration_id: str) -> IterationRecord:
        record = self.get(project_id, iteration_id)
        if self.status(record) != COMPLETED:
            raise bad_request("BadRequestIterationIsNotTrained", f"Iteration '{record.id}' is {self.status(record)}; "
                              "its performance exists once it has Completed.")
        return record

    def holdout(self, record: IterationRecord) -> tuple[Holdout | None, list[tuple[str, str]]]:
        """The iteration's held-out predictions and its tags (id, name) in the model's label order."""
        from azure.core.exceptions import ResourceNotFoundError

        storage = self.store.storage
        container = storage.container(storage.settings.models_container)
        ids = {name: tag_id for tag_id, name in record.tag_names.items()}
        try:
            labels = labels_from_json(container.download_blob(f"{record.model_name}/{LABELS_FILE}").readall())
        except ResourceNotFoundError:
            labels = list(ids)
        tags = [(ids.get(name, ""), name) for name in labels]
        try:
            holdout = holdout_from_json(container.download_blob(f"{record.model_name}/{HOLDOUT_FILE}").readall())
        except ResourceNotFoundError:
            return None, tags
        return (holdout if holdout.labels == labels else None), tags

    def performance(self, project_id: str, iteration_id: str, threshold: float, overlap: float) -> dict:
        record = self.trained(project_id, iteration_id)
        holdout, tags = self.holdout(record)
        return iteration_performance(holdout, tags, threshold, overlap)

    def image_performances(self, project_id: str, iteration_id: str, tag_ids: list[str]) -> list[tuple]:
        """(image record, predictions) of the held-out images that still exist, filtered by true tags."""
        record = self.trained(project_id, iteration_id)
        holdout, tags = self.holdout(record)
        detection = holdout is not None and holdout.task == "detection"
        wanted = {t.strip().lower() for t in tag_ids}
        out = []
        for image in holdout.images if holdout else []:
            stored = self.store.images.get(record.project_id, image.key.rsplit(".", 1)[0])
            if stored is None or (wanted and not wanted & truth_tags(image, tags)):
                continue
            out.append((stored, image_predictions(image, tags, detection)))
        return out
