"""Custom Vision's services over one store (docs/customvision.md): what the composition root builds
and the HTTP routes call."""
from __future__ import annotations

import functools
from typing import Callable

from loupe.customvision.blobs import ImageBlobs
from loupe.customvision.images import ImageService
from loupe.customvision.prediction import PredictionService
from loupe.customvision.projects import ProjectService
from loupe.customvision.records import ProjectRecord
from loupe.customvision.store import CustomVisionStore
from loupe.customvision.training import IterationService
from loupe.customvision.transfer import ProjectTransfer
from loupe.datasets.service import DatasetService
from loupe.inference.cache import PredictorCache
from loupe.models.service import ModelService
from loupe.storage.clients import Storage


class CustomVision:
    def __init__(self, storage: Storage, datasets: Callable[[], DatasetService],
                 models: Callable[[], ModelService], predictors: Callable[[], PredictorCache]) -> None:
        self.storage = storage
        self.store = CustomVisionStore(storage)
        self.blobs = ImageBlobs(storage)
        self.projects = ProjectService(self.store, self.blobs, on_delete=self._project_deleted)
        self.images = ImageService(self.store, self.blobs, self.projects)
        # --- iterations, training, performance, publishing (loupe/customvision/training.py)
        self.iterations = IterationService(self.store, self.blobs, self.projects, datasets, models)
        self._predictors = predictors
        self.iterations.on_publication = self._publication_changed

    # --- project export and import (loupe/customvision/transfer.py)
    @functools.cached_property
    def transfer(self) -> ProjectTransfer:
        return ProjectTransfer(self.store, self.blobs, self.projects)

    # --- prediction, quick test, stored predictions, suggestions (loupe/customvision/prediction.py)
    @functools.cached_property
    def predictions(self) -> PredictionService:
        return PredictionService(self.store, self.blobs, self.projects, self.iterations, self.images, self._predictors)

    def iteration_image_ids(self, project_id: str, iteration_id: str) -> set[str]:
        """The ids of the images an iteration was trained on (listing's ``iterationId`` filter)."""
        return self.iterations.image_ids(project_id, iteration_id)

    def _publication_changed(self, project_id: str) -> None:
        if "predictions" in self.__dict__:  # built: its remembered targets of the project are stale
            self.predictions.forget_targets(project_id)

    def _project_deleted(self, project: ProjectRecord) -> None:
        """What a project owns outside its own rows and blobs (its iterations' models) goes first."""
        self.iterations.forget_project(project)
        self.predictions.forget_project(project)
