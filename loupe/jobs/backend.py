"""The job backend interface: where trainer runs execute (a local subprocess or Azure Batch)."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from loupe.jobs.spec import JobSpec


class JobState(str, Enum):
    QUEUED = "queued"  # accepted, not running yet (waiting for a slot or a node)
    RUNNING = "running"
    COMPLETED = "completed"  # the process/task ended; exit code tells how
    PREEMPTED = "preempted"  # a Spot node was taken away; the backend requeues it
    NOT_FOUND = "notFound"  # the backend has no record of the job (vanished, deleted)


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    exit_code: int | None = None
    # why the backend ended it, in words: "killed by signal 9", "max wall clock time exceeded",
    # "image pull failed: ..."; shown to users in model.error.message
    detail: str | None = None
    requeues: int = 0


class JobBackend(Protocol):
    name: str

    def submit(self, spec: JobSpec, spec_blob: str) -> str:
        """Start the run whose spec was written to ``spec_blob`` (models container); return a job id.

        Must be idempotent for the same ``spec.job_id`` (a retried submission must not start two runs).
        """

    def cancel(self, job_id: str) -> None:
        """Stop the run; the trainer gets a chance to clean up. Unknown ids are ignored."""

    def status(self, job_id: str) -> JobStatus:
        """The backend's view of the run."""

    def shutdown(self) -> None:
        """The host is stopping: release what the backend holds (a local backend stops its
        trainers; a remote one closes its client and leaves its jobs running)."""
