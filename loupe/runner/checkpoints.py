"""Training checkpoints kept in blob storage, so a restarted (Spot-requeued or resubmitted) job resumes."""
from __future__ import annotations

from typing import Protocol

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient


class CheckpointStore(Protocol):
    def save(self, name: str, data: bytes) -> None: ...

    def load(self, name: str) -> bytes | None: ...


class BlobCheckpointStore:
    def __init__(self, container: ContainerClient, prefix: str) -> None:
        self.container = container
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"

    def save(self, name: str, data: bytes) -> None:
        self.container.upload_blob(self.prefix + name, data, overwrite=True)

    def load(self, name: str) -> bytes | None:
        try:
            return self.container.download_blob(self.prefix + name).readall()
        except ResourceNotFoundError:
            return None
