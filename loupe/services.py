"""The composition root: one Loupe process's settings, storage and the services built on them.

The HTTP app, the blob and timer functions (one Function App worker) and the local host each
build ONE Services and share it; nothing here knows whether it runs on Azure or locally.
Parts are built on first use (a Function App instance must start fast), and ``close()`` shuts
down what was built.
"""
from __future__ import annotations

import functools
import threading

from loupe.customvision.service import CustomVision
from loupe.datasets.drop import DropRegistrar
from loupe.datasets.service import DatasetService
from loupe.evaluations.service import EvaluationService
from loupe.exports.service import ExportService
from loupe.inference.cache import PredictorCache
from loupe.jobs.backend import JobBackend
from loupe.jobs.factory import make_backend
from loupe.models.files import BlobModelFiles
from loupe.models.service import ModelService
from loupe.reconcile import Reconciler
from loupe.runs.submit import RunSubmitter
from loupe.settings import Settings, get_settings
from loupe.storage.clients import Storage


class Services:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.storage = Storage(self.settings)
        # re-entrant: building the predictors builds the models service, which builds the backend
        self._lock = threading.RLock()
        self._backend: JobBackend | None = None
        self._predictors: PredictorCache | None = None

    def ready(self) -> "Services":
        """Create containers and tables on first use (Bicep creates them on Azure too)."""
        self.storage.ensure_resources()
        return self

    @property
    def backend(self) -> JobBackend:
        with self._lock:
            if self._backend is None:
                self._backend = make_backend(self.ready().storage)
            return self._backend

    @property
    def predictors(self) -> PredictorCache:
        with self._lock:
            if self._predictors is None:
                self._predictors = PredictorCache(
                    BlobModelFiles(self.ready().storage, self.models.repo), self.settings.inference_cache_size,
                    version_ttl_s=self.settings.inference_version_ttl_seconds)
            return self._predictors

    @functools.cached_property
    def datasets(self) -> DatasetService:
        return DatasetService(self.ready().storage)

    @functools.cached_property
    def drops(self) -> DropRegistrar:
        return DropRegistrar(self.datasets)

    @functools.cached_property
    def submitter(self) -> RunSubmitter:
        return RunSubmitter(self.ready().storage, self.backend)

    @functools.cached_property
    def models(self) -> ModelService:
        return ModelService(self.ready().storage, self.datasets, self.backend, self.submitter,
                            on_delete=self._model_deleted)

    @functools.cached_property
    def evaluations(self) -> EvaluationService:
        return EvaluationService(self.ready().storage, self.datasets, self.models.repo, self.backend, self.submitter)

    @functools.cached_property
    def exports(self) -> ExportService:
        return ExportService(self.ready().storage, self.models.repo, self.submitter)

    @functools.cached_property
    def customvision(self) -> CustomVision:
        return CustomVision(self.ready().storage, lambda: self.datasets, lambda: self.models,
                            lambda: self.predictors)

    @functools.cached_property
    def reconciler(self) -> Reconciler:
        return Reconciler(self.models, self.evaluations, self.backend, self.settings.heartbeat_timeout_seconds,
                          exports=self.exports)

    def _model_deleted(self, name: str) -> None:
        """Forget what belongs to a deleted model: its evaluations and exports, its cached prediction session."""
        self.evaluations.repo.delete_of_model(name)
        self.exports.repo.delete_of_model(name)
        with self._lock:
            predictors = self._predictors
        if predictors is not None:
            predictors.invalidate(name)

    def close(self) -> None:
        """Shut down what was built (the job backend: a local one stops its trainers)."""
        with self._lock:
            backend, self._backend = self._backend, None
        if backend is not None:
            backend.shutdown()


@functools.lru_cache(maxsize=1)
def default_services() -> Services:
    """The process-wide Services of a Function App worker (HTTP function and triggers alike)."""
    return Services()
