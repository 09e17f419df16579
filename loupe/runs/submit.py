"""The one way a run reaches a job backend: its JobSpec is written next to the run's artifacts
(so the runner, a local subprocess or a Batch container, reads it from Loupe's storage), the
backend is asked to start it, and the record learns its job id - or fails with the reason."""
from __future__ import annotations

import logging
from typing import TypeVar

from loupe.jobs.backend import JobBackend
from loupe.jobs.spec import JobSpec
from loupe.runs.record import RunRecord, RunStatus
from loupe.runs.table import RunTable, StaleRun
from loupe.storage.clients import Storage

log = logging.getLogger(__name__)

R = TypeVar("R", bound=RunRecord)


class RunSubmitter:
    def __init__(self, storage: Storage, backend: JobBackend) -> None:
        self.storage = storage
        self.backend = backend

    def submit(self, table: RunTable[R], record: R, spec: JobSpec, *, failure_code: str, what: str) -> R:
        """Start ``spec`` for ``record``; a failure to start ends the run ``failed`` with
        ``failure_code`` and the reason, never an exception."""
        partition, row = record.key()
        try:
            container = self.storage.container(spec.output.container)
            container.upload_blob(spec.spec_blob, spec.to_json().encode(), overwrite=True)
            job_id = self.backend.submit(spec, spec.spec_blob)
        except Exception as exc:
            log.exception("submitting the %s job of %s/%s failed", what, partition, row)
            error = {"code": failure_code,
                     "message": f"The {what} job could not be started: {type(exc).__name__}: {str(exc)[:300]}"}
            changes: dict = {"status": RunStatus.FAILED, "error": error}
        else:
            changes = {"job_id": job_id, "attempt": spec.attempt}
        try:
            return table.update(partition, row, lambda r: r.with_changes(**changes), run_id=record.run_id) or record
        except StaleRun:  # deleted or re-created meanwhile: nothing of this run to record
            return record
