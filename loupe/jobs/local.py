"""The local job backend (the embedded default): each run is ``python -m trainer`` in its own
process group, at most ``local_max_concurrent_jobs`` at a time, the rest queued in order.

Logs go to ``<local_jobs_dir>/<job id>.log`` while the trainer runs and are copied next to the
model (``<model>/logs/<job id>.log`` in the models container) when it ends. Cancel sends SIGTERM
to the whole group (the trainer stops and cleans up), then SIGKILL after a grace period.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from loupe.artifacts import LOGS_DIR
from loupe.jobs.backend import JobState, JobStatus
from loupe.jobs.spec import JOB_SPEC_ENV, JobSpec
from loupe.paths import REPO_ROOT, TRAINER_PATH
from loupe.storage.clients import Storage

log = logging.getLogger(__name__)

TERMINATE_GRACE_SECONDS = 20.0


@dataclass
class _Job:
    job_id: str
    spec: JobSpec
    spec_blob: str
    log_path: Path
    process: subprocess.Popen | None = None
    cancelled: bool = False
    finished: float | None = None
    detail: str | None = None
    killers: list[threading.Timer] = field(default_factory=list)


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the trainer process was killed by {name}"
    return f"the trainer process exited with code {code}"


class LocalBackend:
    name = "local"

    def __init__(self, storage: Storage, *, python: str | None = None, jobs_dir: Path | None = None) -> None:
        self.storage = storage
        self.settings = storage.settings
        self.python = python or sys.executable
        self.jobs_dir = jobs_dir or (REPO_ROOT / self.settings.local_jobs_dir)
        self._jobs: dict[str, _Job] = {}
        self._queue: deque[str] = deque()
        self._lock = threading.RLock()

    # --- the protocol
    def submit(self, spec: JobSpec, spec_blob: str) -> str:
        with self._lock:
            if spec.job_id in self._jobs:
                return spec.job_id
            self.jobs_dir.mkdir(parents=True, exist_ok=True)
            job = _Job(spec.job_id, spec, spec_blob, self.jobs_dir / f"{spec.job_id}.log")
            self._jobs[job.job_id] = job
            self._queue.append(job.job_id)
            self._start_queued()
        return spec.job_id

    def cancel(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.finished is not None:
                return
            job.cancelled = True
            if job.process is None:  # still queued: it never starts
                self._queue.remove(job_id)
                job.finished = time.time()
                job.detail = "cancelled before it started"
                return
            self._signal(job, signal.SIGTERM)
            killer = threading.Timer(TERMINATE_GRACE_SECONDS, self._signal, args=(job, signal.SIGKILL))
            killer.daemon = True
            killer.start()
            job.killers.append(killer)

    def status(self, job_id: str) -> JobStatus:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return JobStatus(JobState.NOT_FOUND, detail="the local backend has no record of this job "
                                 "(was the local host restarted?)")
            if job.process is None:
                return JobStatus(JobState.COMPLETED if job.finished else JobState.QUEUED, detail=job.detail)
            code = job.process.poll()
            if code is None:
                return JobStatus(JobState.RUNNING)
            return JobStatus(JobState.COMPLETED, exit_code=code, detail=describe_exit(code))

    def shutdown(self) -> None:
        """Stop every trainer with the host (SIGKILL): on the next start the reconciler finds their
        jobs unknown and ends the models `failed` with that reason."""
        with self._lock:
            self._queue.clear()
            for job in self._jobs.values():
                self._signal(job, signal.SIGKILL)

    # --- helpers
    def pid(self, job_id: str) -> int | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job.process.pid if job and job.process else None

    def _running(self) -> int:
        return sum(1 for j in self._jobs.values() if j.process is not None and j.finished is None)

    def _start_queued(self) -> None:
        while self._queue and self._running() < max(1, self.settings.local_max_concurrent_jobs):
            self._start(self._jobs[self._queue.popleft()])

    def _environment(self, job: _Job) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOUPE_")}
        # the trainer reads the same settings this process has, plus where its spec is
        for name, value in self.settings.model_dump().items():
            if value is None or name == "api_keys":
                continue  # the trainer never needs the API keys
            env[f"LOUPE_{name.upper()}"] = ",".join(value) if isinstance(value, list) else str(value)
        env["LOUPE_STORAGE_CONNECTION_STRING"] = self.settings.effective_connection_string
        env[JOB_SPEC_ENV] = f"{job.spec.output.container}/{job.spec_blob}"
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(TRAINER_PATH), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _start(self, job: _Job) -> None:
        with open(job.log_path, "ab") as output:
            job.process = subprocess.Popen(
                [self.python, "-m", "trainer"], env=self._environment(job), stdout=output, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=REPO_ROOT, start_new_session=True,  # own process group
            )
        log.info("started trainer pid %d for %s", job.process.pid, job.job_id)
        threading.Thread(target=self._wait, args=(job,), name=f"wait:{job.job_id}", daemon=True).start()

    def _wait(self, job: _Job) -> None:
        code = job.process.wait()
        with self._lock:
            job.finished = time.time()
            job.detail = describe_exit(code)
            for killer in job.killers:
                killer.cancel()
            self._start_queued()
        self._keep_log(job)

    def _signal(self, job: _Job, sig: signal.Signals) -> None:
        if job.process is None or job.process.poll() is not None:
            return
        try:
            os.killpg(job.process.pid, sig)
        except ProcessLookupError:
            pass

    def _keep_log(self, job: _Job) -> None:
        try:
            container = self.storage.container(job.spec.output.container)
            container.upload_blob(job.spec.output.blob(f"{LOGS_DIR}{job.job_id}.log"), job.log_path.read_bytes(),
                                  overwrite=True)
        except Exception:
            log.warning("could not copy the log of %s next to the model", job.job_id, exc_info=True)
