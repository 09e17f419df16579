"""The job backend the settings ask for."""
from __future__ import annotations

from loupe.jobs.backend import JobBackend
from loupe.storage.clients import Storage


def make_backend(storage: Storage) -> JobBackend:
    if storage.settings.job_backend == "azure-batch":
        from loupe.jobs.azure_batch import AzureBatchBackend

        return AzureBatchBackend(storage.settings)
    from loupe.jobs.local import LocalBackend

    return LocalBackend(storage)
