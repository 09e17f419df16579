"""The wiring of one Loupe process: settings, storage and the domain services built on them.

The HTTP app, the blob and timer functions, and the local host each build one Services and
share it; nothing here knows whether it runs on Azure or locally.
"""
from __future__ import annotations

import functools

from loupe.datasets.drop import DropRegistrar
from loupe.datasets.service import DatasetService
from loupe.evaluations.service import EvaluationService
from loupe.inference.cache import PredictorCache
from loupe.jobs.backend import JobBackend
from loupe.jobs.factory import make_backend
from loupe.models.files import BlobModelFiles
from loupe.models.reconcile import Reconciler
from loupe.models.service import ModelService
from loupe.settings import Settings, get_settings
from loupe.storage.clients import Storage


class Services:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.storage = Storage(self.settings)

    def ready(self) -> "Services":
        """Create containers and tables on first use (Bicep creates them on Azure too)."""
        self.storage.ensure_resources()
        return self

    @functools.cached_property
    def datasets(self) -> DatasetService:
        return DatasetService(self.ready().storage)

    @functools.cached_property
    def drops(self) -> DropRegistrar:
        return DropRegistrar(self.datasets)

    @functools.cached_property
    def backend(self) -> JobBackend:
        return make_backend(self.ready().storage)

    @functools.cached_property
    def models(self) -> ModelService:
        return ModelService(self.ready().storage, self.datasets, self.backend)

    @functools.cached_property
    def evaluations(self) -> EvaluationService:
        return EvaluationService(self.ready().storage, self.datasets, self.models.repo, self.backend)

    @functools.cached_property
    def reconciler(self) -> Reconciler:
        return Reconciler(self.models, self.evaluations, self.backend, self.settings.heartbeat_timeout_seconds)

    @functools.cached_property
    def predictors(self) -> PredictorCache:
        return PredictorCache(BlobModelFiles(self.ready().storage, self.models.repo),
                              self.settings.inference_cache_size,
                              version_ttl_s=self.settings.inference_version_ttl_seconds)

    def model_deleted(self, name: str) -> None:
        """Forget anything cached about a deleted model (prediction sessions)."""
        if "predictors" in self.__dict__:
            self.predictors.invalidate(name)


@functools.lru_cache(maxsize=1)
def default_services() -> Services:
    return Services()
