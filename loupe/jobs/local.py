"""The local job backend (the embedded default): each run is ``python -m trainer`` in its own
process group, at most ``local_max_concurrent_jobs`` at a time, the rest queued in order.

Logs go to ``<local_jobs_dir>/<job id>.log`` while the trainer runs and are copied next to the
model (``<model>/logs/<job id>.log`` in the models container) when it ends. Cancel sends SIGTERM
to the whole group (the trainer stops and cleans up), then SIGKILL after a grace period.

While no trainer runs, the backend keeps one STANDBY trainer (``local_warm_trainer``): ``python -m
trainer --standby`` started ahead, its imports done (torch and the recipes: 5-10 s on a small
machine), waiting for one line on stdin that names its job (``loupe.jobs.spec.StandbyAssignment``)
- the next job starts in it instead of in a cold process. It exits when its stdin closes (the host
went away) and is killed with the host (docs/training.md#time-to-model).

Each job also has a durable record, ``<local_jobs_dir>/<job id>.json``: where it reports, its
state, and the trainer's process identity (pid + process start, so a recycled pid is never taken
for it). A trainer outlives a hard crash of the host (kill -9: it runs in its own session), so the
next host ADOPTS it: status RUNNING while it lives, cancel signals its group, COMPLETED when it
ends - its result is kept. Jobs still queued at the crash are queued again. A clean stop of the
host (``shutdown``) still stops its trainers and marks them stopped.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from loupe.artifacts import LOGS_DIR
from loupe.jobs.backend import JobState, JobStatus
from loupe.jobs.spec import JOB_SPEC_ENV, JobSpec, StandbyAssignment
from loupe.paths import REPO_ROOT, TRAINER_PATH
from loupe.storage.clients import Storage

log = logging.getLogger(__name__)

TERMINATE_GRACE_SECONDS = 20.0
WATCH_SECONDS = 1.0  # how often an adopted trainer (not our child: it cannot be waited for) is checked
PRUNE_AFTER_SECONDS = 7 * 24 * 3600  # records (and logs) of ended jobs are kept this long
ORPHAN_ENDED = "the trainer process ended after a restart of the local host (its exit code is unknown)"
STOPPED_WITH_HOST = "the trainer was stopped when the local host stopped"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


_BOOT_ID = _boot_id()


def process_identity(pid: int | None) -> str | None:
    """What tells a live process from any later one given the same pid: the boot and the process's
    start time. None when no such process is alive (gone or a zombie) or it cannot be told."""
    if not pid:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone, or no /proc (not Linux): nothing is adopted
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces and ')'
    if fields[0] in ("Z", "X"):  # ended, not reaped (an orphan's new parent may never reap it)
        return None
    return f"{_BOOT_ID}:{fields[19]}"  # field 22 of proc(5): start time in clock ticks after boot


@dataclass
class JobRecord:
    """The durable part of a job, written at each change (atomically) as ``<job id>.json``."""

    job_id: str
    container: str
    prefix: str  # the model's folder: its log is kept under <prefix>logs/
    spec_blob: str
    # the blob endpoint the job reports to: a jobs folder shared by several hosts adopts only
    # the jobs of its own storage
    storage: str
    state: str = "queued"  # queued | running | ended | stopped (by a clean stop of the host)
    pid: int | None = None
    identity: str | None = None  # process_identity(pid) when it started
    host_pid: int | None = None  # the host that watches it; a live host's jobs are never adopted
    host_identity: str | None = None
    detail: str | None = None

    def write(self, jobs_dir: Path) -> None:
        path = jobs_dir / f"{self.job_id}.json"
        temporary = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_text(json.dumps(asdict(self)))
        os.replace(temporary, path)

    @classmethod
    def read(cls, path: Path) -> "JobRecord":
        return cls(**json.loads(path.read_text()))


@dataclass
class _Job:
    record: JobRecord
    log_path: Path
    process: subprocess.Popen | None = None
    adopted: bool = False  # a trainer a previous host started, alive when this one started
    cancelled: bool = False
    finished: float | None = None
    detail: str | None = None
    killers: list[threading.Timer] = field(default_factory=list)

    @property
    def job_id(self) -> str:
        return self.record.job_id

    @property
    def spec_reference(self) -> str:
        """Where the trainer reads its spec: ``<container>/<blob>`` (JOB_SPEC_ENV's form)."""
        return f"{self.record.container}/{self.record.spec_blob}"


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
        self._storage_id = urlsplit(storage.blob_account_url)._replace(query="", fragment="").geturl()
        self._host = (os.getpid(), process_identity(os.getpid()))
        self._standby: subprocess.Popen | None = None
        self._closed = False
        with self._lock:
            self._recover()
            self._keep_standby()

    # --- the protocol
    def submit(self, spec: JobSpec, spec_blob: str) -> str:
        with self._lock:
            if spec.job_id in self._jobs:
                return spec.job_id
            self.jobs_dir.mkdir(parents=True, exist_ok=True)
            record = JobRecord(spec.job_id, spec.output.container, spec.output.prefix, spec_blob, self._storage_id)
            job = _Job(record, self.jobs_dir / f"{spec.job_id}.log")
            self._save(job)
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
            if job.process is None and not job.adopted:  # still queued: it never starts
                self._queue.remove(job_id)
                self._finish(job, "cancelled before it started")
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
                                 f"(is {self.jobs_dir} the folder the host that started it used?)")
            if job.record.state == "stopped":
                return JobStatus(JobState.NOT_FOUND, detail=STOPPED_WITH_HOST)
            if job.process is not None:
                code = job.process.poll()
                if code is None:
                    return JobStatus(JobState.RUNNING)
                return JobStatus(JobState.COMPLETED, exit_code=code, detail=describe_exit(code))
            if job.finished is not None:
                return JobStatus(JobState.COMPLETED, detail=job.detail)
            if job.adopted:
                return JobStatus(JobState.RUNNING) if self._alive(job) else JobStatus(JobState.COMPLETED,
                                                                                     detail=ORPHAN_ENDED)
            return JobStatus(JobState.QUEUED)

    def shutdown(self) -> None:
        """A clean stop of the host stops every trainer with it (SIGKILL) and marks its record
        stopped: on the next start the reconciler finds the job gone and ends the model `failed`
        with that reason. (A hard crash leaves the records running: the next host adopts them.)"""
        with self._lock:
            self._closed = True
            self._queue.clear()
            self._drop_standby()
            for job in self._jobs.values():
                if job.finished is None and job.record.state != "stopped":
                    job.record.state, job.record.detail = "stopped", STOPPED_WITH_HOST
                    self._save(job)
                self._signal(job, signal.SIGKILL)

    # --- helpers
    def pid(self, job_id: str) -> int | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            return job.process.pid if job.process else job.record.pid if job.adopted else None

    def standby_pid(self) -> int | None:
        """The waiting standby trainer's pid (None: none waits)."""
        with self._lock:
            standby = self._standby
            return standby.pid if standby is not None and standby.poll() is None else None

    def _running(self) -> int:
        return sum(1 for j in self._jobs.values() if (j.process is not None or j.adopted) and j.finished is None)

    def _start_queued(self) -> None:
        while self._queue and self._running() < max(1, self.settings.local_max_concurrent_jobs):
            self._start(self._jobs[self._queue.popleft()])

    def _environment(self, job: _Job | None) -> dict[str, str]:
        """The trainer's environment; without a job, a standby's (its spec comes on stdin)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOUPE_")}
        # the trainer reads the same settings this process has (trainer_threads and the weights
        # folders among them), plus where its spec is
        for name, value in self.settings.model_dump().items():
            if value is None or name == "api_keys":
                continue  # the trainer never needs the API keys
            env[f"LOUPE_{name.upper()}"] = ",".join(value) if isinstance(value, list) else str(value)
        env["LOUPE_STORAGE_CONNECTION_STRING"] = self.settings.effective_connection_string
        if job is not None:
            env[JOB_SPEC_ENV] = job.spec_reference
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(TRAINER_PATH), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _start(self, job: _Job) -> None:
        job.process = self._assign_standby(job)
        if job.process is None:
            with open(job.log_path, "ab") as output:
                job.process = subprocess.Popen(
                    [self.python, "-m", "trainer"], env=self._environment(job), stdout=output,
                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO_ROOT,
                    start_new_session=True,  # own process group
                )
        job.record.state, job.record.pid = "running", job.process.pid
        job.record.identity = process_identity(job.process.pid)
        self._save(job)
        log.info("started trainer pid %d for %s", job.process.pid, job.job_id)
        threading.Thread(target=self._wait, args=(job,), name=f"wait:{job.job_id}", daemon=True).start()

    # --- the standby trainer
    def _keep_standby(self) -> None:
        """Start a standby trainer when none is waiting and no job runs (its imports would only
        slow a running job down)."""
        if not self.settings.local_warm_trainer or self._closed or self._running():
            return
        if self._standby is not None and self._standby.poll() is None:
            return
        try:
            self.jobs_dir.mkdir(parents=True, exist_ok=True)
            standby_log = self.jobs_dir / f"standby-{time.time_ns()}.log"
            with open(standby_log, "wb") as output:
                self._standby = subprocess.Popen(
                    [self.python, "-m", "trainer", "--standby", str(standby_log)],
                    env=self._environment(None), stdout=output, stderr=subprocess.STDOUT,
                    stdin=subprocess.PIPE, cwd=REPO_ROOT, start_new_session=True,
                )
        except OSError:
            self._standby = None
            log.warning("could not start a standby trainer; jobs start cold", exc_info=True)

    def _assign_standby(self, job: _Job) -> subprocess.Popen | None:
        """Hand ``job`` to the waiting standby trainer: its process, or None (none is waiting)."""
        process, self._standby = self._standby, None
        if process is None:
            return None
        if process.poll() is not None:
            log.warning("the standby trainer had ended (%s); the job starts cold",
                        describe_exit(process.returncode))
            return None
        line = StandbyAssignment(spec=job.spec_reference, log=str(job.log_path))
        try:
            process.stdin.write(line.model_dump_json().encode() + b"\n")
            process.stdin.close()
        except OSError:  # it died in between: start the job cold
            self._discard(process)
            return None
        log.info("job %s runs in the standby trainer pid %d", job.job_id, process.pid)
        return process

    def _drop_standby(self) -> None:
        process, self._standby = self._standby, None
        if process is not None:
            self._discard(process)

    @staticmethod
    def _discard(process: subprocess.Popen) -> None:
        """Kill a standby trainer that will run no job, reap it and remove its --standby LOG."""
        Path(process.args[-1]).unlink(missing_ok=True)
        if process.stdin is not None and not process.stdin.closed:
            process.stdin.close()
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        threading.Thread(target=process.wait, daemon=True).start()  # reap it

    def _wait(self, job: _Job) -> None:
        code = job.process.wait()
        self._finish(job, describe_exit(code))

    def _watch(self, job: _Job) -> None:
        while self._alive(job):
            time.sleep(WATCH_SECONDS)
        self._finish(job, ORPHAN_ENDED)

    def _finish(self, job: _Job, detail: str) -> None:
        with self._lock:
            if job.finished is not None:
                return
            job.finished, job.detail = time.time(), detail
            for killer in job.killers:
                killer.cancel()
            if job.record.state != "stopped":
                job.record.state, job.record.detail = "ended", detail
            self._save(job)
            self._start_queued()
            self._keep_standby()
        if job.process is not None or job.adopted:
            self._keep_log(job)

    def _alive(self, job: _Job) -> bool:
        return job.record.identity is not None and process_identity(job.record.pid) == job.record.identity

    def _signal(self, job: _Job, sig: signal.Signals) -> None:
        if job.process is not None:
            if job.process.poll() is not None:
                return
            group = job.process.pid
        elif job.adopted and self._alive(job):  # the identity check: never signal a recycled pid
            group = job.record.pid
        else:
            return
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            pass

    def _save(self, job: _Job) -> None:
        job.record.host_pid, job.record.host_identity = self._host
        try:
            self.jobs_dir.mkdir(parents=True, exist_ok=True)
            job.record.write(self.jobs_dir)
        except OSError:
            log.warning("could not write the record of %s; a restarted host cannot adopt it", job.job_id,
                        exc_info=True)

    def _keep_log(self, job: _Job) -> None:
        try:
            container = self.storage.container(job.record.container)
            # the process ends a moment after its run reported its outcome; if the model was deleted
            # in between (its folder, the job's spec included, is gone), the log must not bring it back
            spec = container.get_blob_client(job.record.spec_blob)
            if not spec.exists():
                return
            log_blob = f"{job.record.prefix}{LOGS_DIR}{job.job_id}.log"
            container.upload_blob(log_blob, job.log_path.read_bytes(), overwrite=True)
            if not spec.exists():  # deleted while we uploaded: the deletion may have listed before us
                container.delete_blob(log_blob)
        except Exception:
            log.warning("could not copy the log of %s next to the model", job.job_id, exc_info=True)

    # --- after a restart
    def _recover(self) -> None:
        """Take over the jobs a previous host of this storage left: queued ones are queued again,
        live trainers adopted, ended ones remembered (their status is still asked for)."""
        for path in sorted(self.jobs_dir.glob("*.json")) if self.jobs_dir.is_dir() else []:
            try:
                record = JobRecord.read(path)
            except (OSError, ValueError, TypeError):
                continue
            if record.state in ("ended", "stopped") and time.time() - path.stat().st_mtime > PRUNE_AFTER_SECONDS:
                path.unlink(missing_ok=True)
                path.with_suffix(".log").unlink(missing_ok=True)
                continue
            if record.storage != self._storage_id or record.job_id in self._jobs:
                continue
            if record.state in ("queued", "running") and self._owned_by_live_host(record):
                continue  # another host (or another backend of this process) watches it
            self._take_over(_Job(record, self.jobs_dir / f"{record.job_id}.log"))
        # a standby removes its own log unless it was killed or failed before it got a job
        for path in self.jobs_dir.glob("standby-*.log") if self.jobs_dir.is_dir() else []:
            if time.time() - path.stat().st_mtime > PRUNE_AFTER_SECONDS:
                path.unlink(missing_ok=True)
        self._start_queued()

    def _take_over(self, job: _Job) -> None:
        self._jobs[job.job_id] = job
        if job.record.state in ("ended", "stopped"):
            job.finished, job.detail = time.time(), job.record.detail
        elif job.record.state == "queued":
            self._save(job)
            self._queue.append(job.job_id)
        else:
            job.adopted = True
            self._save(job)
            log.info("adopted trainer pid %s for %s (started by an earlier host)", job.record.pid, job.job_id)
            threading.Thread(target=self._watch, args=(job,), name=f"watch:{job.job_id}", daemon=True).start()

    @staticmethod
    def _owned_by_live_host(record: JobRecord) -> bool:
        return record.host_identity is not None and process_identity(record.host_pid) == record.host_identity
