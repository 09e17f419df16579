"""Creating models (which starts training), reading, cancelling and deleting them."""
from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from typing import Callable

from loupe.budget import budget_problem
from loupe.datasets.record import DatasetRecord
from loupe.datasets.requests import name_problem
from loupe.datasets.service import DatasetService, check_name
from loupe.enums import AnnotationKind, ModelKind, TrainingErrorCode
from loupe.errors import ServiceError, bad_request, conflict, not_found, shown
from loupe.jobs.backend import JobBackend, JobState
from loupe.jobs.spec import JOB_SPEC_FILE, JobOutput, JobSpec
from loupe.models.record import PARTITION, ModelRecord, model_status
from loupe.models.repository import ModelRepository
from loupe.models.requests import ModelIn
from loupe.runs.record import RunStatus
from loupe.runs.submit import RunSubmitter
from loupe.storage.clients import Storage
from loupe.storage.entities import utc_now
from loupe.storage.table_store import AlreadyExists, ConcurrentChange

log = logging.getLogger(__name__)

CANCELLABLE = (RunStatus.NOT_STARTED, RunStatus.RUNNING)


def _dataset_problem(record: DatasetRecord, purpose: str) -> str:
    validation = record.validation
    status = validation.status if validation else "unknown"
    first = validation.first_problem() if validation else ""
    return f"dataset '{record.name}' is not valid for {purpose} (status {status}){first}"


class ModelService:
    def __init__(self, storage: Storage, datasets: DatasetService, backend: JobBackend,
                 submitter: RunSubmitter, on_delete: Callable[[str], None] = lambda name: None) -> None:
        self.storage = storage
        self.settings = storage.settings
        self.datasets = datasets
        self.backend = backend
        self.submitter = submitter
        self.repo = ModelRepository(storage)
        # what else forgets a deleted model (its evaluations, cached prediction sessions)
        self.on_delete = on_delete

    # --- reads
    def get(self, name: str) -> ModelRecord:
        check_name(name, "model")
        stored = self.repo.find(name)
        if stored is None:
            raise not_found("Model", name)
        return stored.value

    def list(self) -> list[ModelRecord]:
        return self.repo.all()

    # --- create = start training
    def _training_dataset(self, name: str) -> DatasetRecord:
        target = "trainingParameters.trainingDatasetName"
        stored = None if name_problem(name) else self.datasets.find(name)
        if stored is None:
            raise bad_request(f"Training dataset '{shown(name)}' is not registered; register it first "
                              "(PUT /computervision/datasets/{name} or drop its COCO file into the datasets container).",
                              code="DatasetNotFound", target=target)
        if not stored.value.usable_for_training:
            raise bad_request(_dataset_problem(stored.value, "training").capitalize() + ".",
                              code="DatasetNotUsable", target=target)
        return stored.value

    def _test_dataset(self, name: str, kind: AnnotationKind) -> DatasetRecord:
        target = "evaluationParameters.testDatasetName"
        stored = None if name_problem(name) else self.datasets.find(name)
        if stored is None:
            raise bad_request(f"Test dataset '{shown(name)}' is not registered.", code="DatasetNotFound", target=target)
        if not stored.value.usable_for_evaluation:
            raise bad_request(_dataset_problem(stored.value, "evaluation").capitalize() + ".",
                              code="DatasetNotUsable", target=target)
        if stored.value.annotation_kind is not kind:
            raise bad_request(f"Test dataset '{name}' is {stored.value.annotation_kind.value}; the training dataset "
                              f"is {kind.value}.", code="IncorrectModelKind", target=target)
        return stored.value

    def create(self, name: str, body: ModelIn, *, multilabel: bool | None = None,
               exportable: bool = False) -> ModelRecord:
        """``multilabel``: fixes a classifier's kind (Custom Vision's classificationType); None: the data decides.
        ``exportable`` (or the body's ``trainingParameters.exportable``; Custom Vision: a compact domain):
        a detector trains on stretched images, as export packages take them."""
        check_name(name, "model")
        if body.name is not None and body.name != name:
            raise bad_request(f"The body's name '{shown(body.name)}' differs from the name in the URL '{name}'.",
                              target="name", inner_code="BadArgument")
        if self.repo.find(name) is not None:
            raise conflict("ModelAlreadyExists", f"Model '{name}' already exists; delete it first to train again.")
        params = body.training_parameters
        if params.model_kind is ModelKind.PRODUCT_RECOGNIZER:
            raise bad_request("Model kind 'Product-Recognizer' is not supported by Loupe yet; use "
                              "'Generic-Classifier' or 'Generic-Detector'.", code="ModelKindNotSupported",
                              target="trainingParameters.modelKind")
        training = self._training_dataset(params.training_dataset_name)
        kind = params.model_kind or ModelKind.for_annotation_kind(training.annotation_kind)
        if kind.annotation_kind is not training.annotation_kind:
            raise bad_request(f"Model kind '{kind.value}' needs an {kind.annotation_kind.value} dataset; "
                              f"'{training.name}' is {training.annotation_kind.value}.",
                              code="IncorrectModelKind", target="trainingParameters.modelKind")
        test = None
        if body.evaluation_parameters is not None:
            test = self._test_dataset(body.evaluation_parameters.test_dataset_name, training.annotation_kind)
        record = ModelRecord(
            name=name,
            training_dataset=training.name,
            budget_hours=params.time_budget_in_hours,
            model_kind=kind,
            test_dataset=test.name if test else None,
            run_id=uuid.uuid4().hex,
            backend=self.backend.name,
            multilabel=multilabel if kind is ModelKind.CLASSIFIER else None,
            input_resize="stretch" if kind is ModelKind.DETECTOR and (exportable or params.exportable) else None,
        )
        images = training.validation.image_count if training.validation else 0
        too_small = budget_problem(kind, images, params.time_budget_in_hours)
        if too_small:
            # as the retired service did: the model exists and has failed, nothing runs
            record = replace(record, status=RunStatus.FAILED,
                             error={"code": TrainingErrorCode.NOT_ENOUGH_BUDGET.value, "message": too_small})
        try:
            self.repo.store.create(record)
        except AlreadyExists:
            raise conflict("ModelAlreadyExists", f"Model '{name}' already exists.") from None
        if too_small:
            return record
        return self.submit(record, self.job_spec(record, training, test))

    def job_spec(self, record: ModelRecord, training: DatasetRecord, test: DatasetRecord | None,
                 attempt: int = 0, budget_seconds: float | None = None) -> JobSpec:
        """The training job of ``record``; ``budget_seconds`` overrides the model's whole hours
        (tests and benchmarks run jobs with seconds)."""
        return JobSpec(
            mode="train",
            model_name=record.name,
            run_id=record.run_id,
            model_kind=record.model_kind,
            training_dataset=training.job_source(),
            evaluation_dataset=test.job_source() if test else None,
            budget_seconds=budget_seconds or record.budget_seconds,
            output=JobOutput(container=self.settings.models_container, prefix=f"{record.name}/"),
            multilabel=record.multilabel,
            input_resize=record.input_resize,
            attempt=attempt,
        )

    def submit(self, record: ModelRecord, spec: JobSpec) -> ModelRecord:
        """Write the spec next to the model's artifacts and hand it to the backend."""
        return self.submitter.submit(self.repo.runs, record, spec, failure_code=TrainingErrorCode.UNKNOWN.value,
                                     what="training")

    # --- cancel
    def cancel(self, name: str) -> ModelRecord:
        record = self.get(name)
        if record.status in (RunStatus.CANCELLING, RunStatus.CANCELLED):
            return record
        if record.status not in CANCELLABLE:
            raise bad_request(f"Model '{name}' has already {model_status(record.status)}; only notStarted or training "
                              "models can be cancelled.", code="InvalidRequest", inner_code="ModelNotCancellable")

        def to_cancelling(current: ModelRecord) -> ModelRecord | None:
            if current.status not in CANCELLABLE:
                return None
            return current.with_changes(status=RunStatus.CANCELLING, cancel_requested=utc_now())

        updated = self.repo.update(name, to_cancelling)
        if updated is None:
            raise not_found("Model", name)
        if updated.status is RunStatus.CANCELLING and updated.job_id:
            self.backend.cancel(updated.job_id)
            if self.backend.status(updated.job_id).state in (JobState.COMPLETED, JobState.NOT_FOUND):
                # the job never ran (it was queued) or is already gone: nothing will report back
                updated = self.repo.update(name, lambda r: r.with_changes(status=RunStatus.CANCELLED)
                                           if r.status is RunStatus.CANCELLING else None) or updated
        return updated

    # --- delete
    def delete(self, name: str) -> None:
        check_name(name, "model")
        stored = self.repo.find(name)
        if stored is None:
            raise not_found("Model", name)
        if not stored.value.status.is_terminal:
            raise bad_request(f"Model '{name}' is {model_status(stored.value.status)}; only succeeded, failed or cancelled "
                              "models can be deleted. Cancel it first.", code="InvalidRequest",
                              inner_code="ModelNotDeletable")
        try:
            self.repo.store.delete(PARTITION, name, stored.table_etag)
        except ConcurrentChange:
            raise ServiceError(409, "Conflict", f"Model '{name}' changed while being deleted; retry.") from None
        self._delete_artifacts(name)

    def _delete_artifacts(self, name: str) -> None:
        """Best effort: the model is already gone from the API; leftovers are invisible."""
        try:
            container = self.storage.container(self.settings.models_container)
            names = [blob.name for blob in container.list_blobs(name_starts_with=f"{name}/")]
            # the job specs first: a job backend copies a finishing job's log into the folder only
            # while its spec exists (and removes the copy if the spec vanished meanwhile), so after
            # them, one more listing catches any log that landed during the deletion
            specs = [n for n in names if n.endswith(JOB_SPEC_FILE)]
            for blob_name in specs + [n for n in names if n not in specs]:
                container.delete_blob(blob_name)
            for blob in container.list_blobs(name_starts_with=f"{name}/"):
                container.delete_blob(blob.name)
            self.on_delete(name)
        except Exception:
            log.exception("cleaning up after deleted model %s failed", name)
