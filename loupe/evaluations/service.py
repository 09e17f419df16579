"""Creating (which runs it as a job on the model's backend), reading and deleting evaluations."""
from __future__ import annotations

import logging
import uuid

from loupe.datasets.requests import name_problem
from loupe.datasets.service import DatasetService, check_name
from loupe.enums import EvaluationErrorCode
from loupe.errors import ServiceError, bad_request, conflict, not_found, shown
from loupe.evaluations.record import EvaluationRecord
from loupe.evaluations.repository import EvaluationRepository
from loupe.jobs.backend import JobBackend
from loupe.jobs.spec import JobOutput, JobSpec
from loupe.models.record import model_status
from loupe.models.repository import ModelRepository
from loupe.runs.record import RunStatus
from loupe.runs.submit import RunSubmitter
from loupe.storage.clients import Storage
from loupe.storage.table_store import AlreadyExists, ConcurrentChange
from loupe.wire import WireModel

log = logging.getLogger(__name__)

# Evaluations run the exported model on CPU or GPU; this is their time limit.
EVALUATION_BUDGET_SECONDS = 2 * 3600.0


class EvaluationParametersIn(WireModel):
    test_dataset_name: str


class EvaluationIn(WireModel):
    name: str | None = None
    evaluation_parameters: EvaluationParametersIn


class EvaluationService:
    def __init__(self, storage: Storage, datasets: DatasetService, models: ModelRepository,
                 backend: JobBackend, submitter: RunSubmitter) -> None:
        self.storage = storage
        self.settings = storage.settings
        self.datasets = datasets
        self.models = models
        self.backend = backend
        self.submitter = submitter
        self.repo = EvaluationRepository(storage)

    def _model(self, model: str):
        check_name(model, "model")
        stored = self.models.find(model)
        if stored is None:
            raise not_found("Model", model)
        return stored.value

    def get(self, model: str, name: str) -> EvaluationRecord:
        self._model(model)
        check_name(name, "evaluation")
        stored = self.repo.find(model, name)
        if stored is None:
            raise not_found("Evaluation", f"{model}/{name}")
        return stored.value

    def list(self, model: str) -> list[EvaluationRecord]:
        self._model(model)
        return self.repo.of_model(model)

    def create(self, model_name: str, name: str, body: EvaluationIn) -> EvaluationRecord:
        model = self._model(model_name)
        check_name(name, "evaluation")
        if body.name is not None and body.name != name:
            raise bad_request(f"The body's name '{shown(body.name)}' differs from the name in the URL '{name}'.",
                              target="name", inner_code="BadArgument")
        if self.repo.find(model_name, name) is not None:
            raise conflict("EvaluationAlreadyExists", f"Evaluation '{name}' of model '{model_name}' already exists.")
        if model.status is not RunStatus.SUCCEEDED:
            raise bad_request(f"Model '{model_name}' is {model_status(model.status)}; only succeeded models "
                              "can be evaluated.",
                              code="ModelNotTrained")
        dataset_name = body.evaluation_parameters.test_dataset_name
        target = "evaluationParameters.testDatasetName"
        dataset = None if name_problem(dataset_name) else self.datasets.find(dataset_name)
        if dataset is None:
            raise bad_request(f"Test dataset '{shown(dataset_name)}' is not registered.",
                              code=EvaluationErrorCode.DATASET_NOT_FOUND.value, target=target)
        if dataset.value.annotation_kind is not model.model_kind.annotation_kind:
            raise bad_request(f"Dataset '{dataset_name}' is {dataset.value.annotation_kind.value}; model "
                              f"'{model_name}' is a {model.model_kind.value}.",
                              code=EvaluationErrorCode.INCORRECT_MODEL_KIND.value, target=target)
        if not dataset.value.usable_for_evaluation:
            status = dataset.value.validation.status if dataset.value.validation else None
            raise bad_request(f"Dataset '{dataset_name}' is not valid for evaluation (status {status}).",
                              code=EvaluationErrorCode.DATASET_CORRUPT.value, target=target)
        record = EvaluationRecord(model_name=model_name, name=name, test_dataset=dataset_name,
                                  run_id=uuid.uuid4().hex)
        spec = JobSpec(
            mode="evaluate", model_name=model_name, evaluation_name=name, run_id=record.run_id,
            model_kind=model.model_kind, evaluation_dataset=dataset.value.job_source(),
            budget_seconds=EVALUATION_BUDGET_SECONDS,
            output=JobOutput(container=self.settings.models_container, prefix=f"{model_name}/"),
        )
        try:
            self.repo.store.create(record)
        except AlreadyExists:
            raise conflict("EvaluationAlreadyExists", f"Evaluation '{name}' already exists.") from None
        return self.submit(record, spec)

    def submit(self, record: EvaluationRecord, spec: JobSpec) -> EvaluationRecord:
        return self.submitter.submit(self.repo.runs, record, spec, failure_code=EvaluationErrorCode.INTERNAL.value,
                                     what="evaluation")

    def delete(self, model: str, name: str) -> None:
        record = self.get(model, name)
        stored = self.repo.find(model, name)
        if stored is None:
            raise not_found("Evaluation", f"{model}/{name}")
        if not record.status.is_terminal and record.job_id:
            self.backend.cancel(record.job_id)
        try:
            self.repo.store.delete(model, name, stored.table_etag)
        except ConcurrentChange:
            raise ServiceError(409, "Conflict", f"Evaluation '{name}' changed while being deleted; retry.") from None
