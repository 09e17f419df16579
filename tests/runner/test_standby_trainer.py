"""The local backend's standby trainer (docs/training.md#time-to-model): a real ``python -m
trainer --standby`` started ahead, handed the next job on stdin, replaced when the job ends, gone
with the host."""
from __future__ import annotations

import os
import signal

import pytest

from loupe.enums import ModelKind
from loupe.jobs.backend import JobState
from loupe.jobs.spec import JobOutput, JobSpec
from tests.support.processes import alive, wait_for


def _spec(name: str) -> JobSpec:
    return JobSpec(model_name=name, run_id=f"{name}-run", model_kind=ModelKind.CLASSIFIER, budget_seconds=60,
                   output=JobOutput(container="models", prefix=f"{name}/"))


def _until(predicate, timeout: float, what: str):
    return wait_for(predicate, timeout, what, interval=0.2)


@pytest.fixture
def backend(make_settings, tmp_path):
    from loupe.jobs.local import LocalBackend
    from loupe.storage.clients import Storage

    backend = LocalBackend(Storage(make_settings(local_warm_trainer=True)), jobs_dir=tmp_path)
    yield backend
    backend.shutdown()


@pytest.mark.timeout(240)
def test_the_next_job_runs_in_the_standby_and_a_new_standby_follows(backend, tmp_path):
    standby = backend.standby_pid()
    assert standby is not None, "an idle host keeps a standby trainer"
    standby_logs = list(tmp_path.glob("standby-*.log"))
    assert len(standby_logs) == 1
    # a job whose spec blob does not exist: the trainer fails at once, with a traceback in the job's log
    spec = _spec("standby-a")
    backend.submit(spec, "standby-a/jobspec.json")
    assert backend.pid(spec.job_id) == standby, "the job runs in the process that was waiting"
    assert backend.standby_pid() is None, "no second standby while a job runs"
    status = _until(lambda: (s := backend.status(spec.job_id)).state is JobState.COMPLETED and s, 120,
                    "the job to end")
    assert status.exit_code == 1
    job_log = (tmp_path / f"{spec.job_id}.log").read_text(errors="replace")
    assert "BlobNotFound" in job_log or "ResourceNotFound" in job_log, job_log[-2000:]
    assert not standby_logs[0].exists(), "the standby's own log moves into the job's"
    # the host is idle again: a fresh standby waits
    replacement = _until(backend.standby_pid, 30, "a new standby trainer")
    assert replacement != standby


@pytest.mark.timeout(240)
def test_a_job_starts_cold_when_the_standby_has_died(backend, tmp_path):
    standby = _until(backend.standby_pid, 30, "the standby trainer")
    os.killpg(standby, signal.SIGKILL)
    _until(lambda: backend.standby_pid() is None, 30, "the standby to be gone")
    spec = _spec("standby-b")
    backend.submit(spec, "standby-b/jobspec.json")
    pid = backend.pid(spec.job_id)
    assert pid is not None and pid != standby
    status = _until(lambda: (s := backend.status(spec.job_id)).state is JobState.COMPLETED and s, 120,
                    "the job to end")
    assert status.exit_code == 1
    assert "ResourceNotFound" in (tmp_path / f"{spec.job_id}.log").read_text(errors="replace")


@pytest.mark.timeout(120)
def test_the_standby_leaves_with_the_host(backend, tmp_path):
    standby = _until(backend.standby_pid, 30, "the standby trainer")
    backend.shutdown()
    _until(lambda: not alive(standby), 30, "the standby to exit")
    assert not list(tmp_path.glob("standby-*.log"))
    assert backend.standby_pid() is None


def test_a_standby_whose_host_went_away_exits_by_itself(make_settings, tmp_path):
    """The host's end of the standby's stdin closes when the host dies (even kill -9): the standby
    returns without running anything and removes its log."""
    import subprocess
    import sys

    from loupe.paths import REPO_ROOT, TRAINER_PATH

    log = tmp_path / "standby-1.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(TRAINER_PATH)]))
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "trainer", "--standby", str(log)], env=env,
                                   stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT,
                                   cwd=REPO_ROOT)
    process.stdin.close()
    assert process.wait(timeout=120) == 0
    assert not log.exists()
