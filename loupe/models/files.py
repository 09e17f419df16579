"""A trained model's artifacts in blob storage, as the prediction cache reads them."""
from __future__ import annotations

from azure.core.exceptions import ResourceNotFoundError

from loupe.datasets.requests import name_problem
from loupe.models.repository import ModelRepository
from loupe.runs.record import RunStatus
from loupe.storage.clients import Storage


class BlobModelFiles:
    """``version`` is the run id of a succeeded model: it changes when a model is re-created."""

    def __init__(self, storage: Storage, repo: ModelRepository) -> None:
        self.container = storage.container(storage.settings.models_container)
        self.repo = repo

    def version(self, model_name: str) -> str | None:
        if name_problem(model_name):
            return None
        stored = self.repo.find(model_name)
        if stored is None or stored.value.status is not RunStatus.SUCCEEDED:
            return None
        return stored.value.run_id

    def read(self, model_name: str, file: str) -> bytes:
        try:
            return self.container.download_blob(f"{model_name}/{file}").readall()
        except ResourceNotFoundError:
            raise FileNotFoundError(f"{model_name}/{file}") from None
