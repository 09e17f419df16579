"""Handing a JobSpec to a backend: the spec is written next to the model's artifacts first, so
the trainer (local subprocess or Batch container) reads it from Loupe's storage."""
from __future__ import annotations

from loupe.jobs.backend import JobBackend
from loupe.jobs.spec import JobSpec
from loupe.storage.clients import Storage


def submit_spec(storage: Storage, backend: JobBackend, spec: JobSpec) -> str:
    """Write the spec blob and submit it; returns the backend's job id (raises on failure)."""
    container = storage.container(spec.output.container)
    container.upload_blob(spec.spec_blob, spec.to_json().encode(), overwrite=True)
    return backend.submit(spec, spec.spec_blob)


def submit_failure_message(what: str, exc: Exception) -> str:
    return f"The {what} job could not be started: {type(exc).__name__}: {str(exc)[:300]}"
