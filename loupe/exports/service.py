"""Creating (a job builds the package), reading and linking exports of trained models (docs/exports.md)."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from loupe.datasets.service import check_name
from loupe.errors import ServiceError, bad_request, not_found
from loupe.exports.platforms import Unsupported, canonical
from loupe.exports.record import ExportRecord
from loupe.exports.repository import ExportRepository
from loupe.jobs.spec import JobOutput, JobSpec, export_key
from loupe.models.record import ModelRecord, model_status
from loupe.models.repository import ModelRepository
from loupe.runner.export import EXPORT_FAILED
from loupe.runs.record import RunStatus
from loupe.runs.submit import RunSubmitter
from loupe.storage.clients import Storage
from loupe.storage.signing import BlobSigner
from loupe.storage.table_store import AlreadyExists, ConcurrentChange

log = logging.getLogger(__name__)

# Converting one model takes seconds to a minute on a CPU; this is the job's time limit.
EXPORT_BUDGET_SECONDS = 1800.0


class ExportInProgress(ServiceError):
    """The same package is being built: callers (Custom Vision) answer their own code."""

    def __init__(self, record: ExportRecord) -> None:
        super().__init__(409, "ExportAlreadyInProgress",
                         f"The {record.name} export of model '{record.model_name}' is still running.")
        self.record = record


class UnsupportedExport(ServiceError):
    def __init__(self, reason: Unsupported) -> None:
        super().__init__(400, "UnsupportedExport", reason.message, target=reason.what)
        self.reason = reason


@dataclass(frozen=True)
class Started:
    record: ExportRecord
    created: bool  # False: a succeeded export of the same package was answered as it is


class ExportService:
    def __init__(self, storage: Storage, models: ModelRepository, submitter: RunSubmitter) -> None:
        self.storage = storage
        self.settings = storage.settings
        self.models = models
        self.submitter = submitter
        self.repo = ExportRepository(storage)
        self.signer = BlobSigner(storage, self.settings.models_container,
                                 self.settings.customvision_link_seconds)

    def _model(self, model: str) -> ModelRecord:
        check_name(model, "model")
        stored = self.models.find(model)
        if stored is None:
            raise not_found("Model", model)
        return stored.value

    def list(self, model: str) -> list[ExportRecord]:
        self._model(model)
        return self.repo.of_model(model)

    def get(self, model: str, platform: str, flavor: str | None = None) -> ExportRecord:
        """The export of ``platform`` (and ``flavor``) of ``model``."""
        self._model(model)
        try:
            key = export_key(*canonical(platform, flavor))
        except Unsupported as exc:
            raise UnsupportedExport(exc) from None
        stored = self.repo.find(model, key)
        if stored is None:
            raise not_found("Export", f"{model}/{key}")
        return stored.value

    def link(self, record: ExportRecord) -> str | None:
        """A pre-signed, expiring URL of the package once it is built."""
        return self.signer.link(record.blob) if record.status is RunStatus.SUCCEEDED else None

    def create(self, model_name: str, platform: str, flavor: str | None = None) -> Started:
        """Start building the package; an export of it that succeeded is answered as it is, one that
        is still running raises ExportInProgress, one that failed is built again."""
        try:
            platform, canonical_flavor = canonical(platform, flavor)
        except Unsupported as exc:
            raise UnsupportedExport(exc) from None
        model = self._model(model_name)
        if model.status is not RunStatus.SUCCEEDED:
            raise bad_request(f"Model '{model_name}' is {model_status(model.status)}; only succeeded models "
                              "can be exported.", code="ModelNotTrained")
        record = ExportRecord(model_name=model_name, platform=platform, flavor=canonical_flavor,
                              requested_flavor=flavor or None, run_id=uuid.uuid4().hex)
        stored = self.repo.find(model_name, record.name)
        try:
            if stored is None:
                self.repo.store.create(record)
            elif stored.value.status is RunStatus.SUCCEEDED:
                return Started(stored.value, created=False)
            elif not stored.value.status.is_terminal:
                raise ExportInProgress(stored.value)
            else:  # failed before: a fresh run in its place
                self.repo.store.replace(record, stored.table_etag)
        except (AlreadyExists, ConcurrentChange):  # another request started it meanwhile
            current = self.repo.find(model_name, record.name)
            raise ExportInProgress(current.value if current else record) from None
        spec = JobSpec(mode="export", model_name=model_name, run_id=record.run_id,
                       model_kind=model.model_kind,
                       export_platform=platform, export_flavor=canonical_flavor,
                       budget_seconds=EXPORT_BUDGET_SECONDS,
                       output=JobOutput(container=self.settings.models_container, prefix=f"{model_name}/"))
        record = self.submitter.submit(self.repo.runs, record, spec, failure_code=EXPORT_FAILED,
                                       what="export")
        return Started(record, created=True)
