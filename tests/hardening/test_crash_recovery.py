"""A hard crash of the local host (kill -9) must not orphan its trainer or discard its result: the
restarted host adopts the trainer still running (status, cancel, its end) and the model ends
``succeeded`` with its result served. A trainer's durable record names it by pid and process start,
so a recycled pid is never mistaken for it."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from loupe.local.azurite import Azurite, free_port
from loupe.paths import REPO_ROOT
from loupe.sample_data import classification

API_VERSION = "2023-04-01-preview"
HOST_KEY = "hardening-key-5f1c2e"


class HostProcess:
    """`python -m loupe.local serve` as its own process (as `make serve` runs it), its output in files."""

    def __init__(self, azurite: Azurite, folder: Path, **settings: str) -> None:
        self.azurite, self.folder = azurite, folder
        self.port = free_port()
        self.settings = {"STORAGE_CONNECTION_STRING": azurite.connection_string, "API_KEYS": HOST_KEY,
                         "RECONCILE_INTERVAL_SECONDS": "1", "LOCAL_JOBS_DIR": str(folder / "jobs"),
                         "TRAINER_THREADS": "1", **settings}
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "HostProcess":
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOUPE_")}
        env.update({f"LOUPE_{k}": v for k, v in self.settings.items()})
        self.starts += 1
        with open(self.folder / f"host-{self.starts}.out", "wb") as out, \
                open(self.folder / f"host-{self.starts}.err", "wb") as err:
            self.process = subprocess.Popen([sys.executable, "-m", "loupe.local", "serve", "--port", str(self.port)],
                                            env=env, cwd=REPO_ROOT, stdout=out, stderr=err)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.endpoint}/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            assert self.process.poll() is None, (self.folder / f"host-{self.starts}.err").read_text()
            time.sleep(0.1)
        raise AssertionError("the local host did not answer /health")

    def kill(self) -> None:
        """kill -9 of the host process alone (its trainers run in their own process groups)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)

    def output(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.folder.glob("host-*.*")))

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        params = {"api-version": API_VERSION, **kwargs.pop("params", {})}
        headers = {"Ocp-Apim-Subscription-Key": HOST_KEY, **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.endpoint}/computervision/{path}", params=params,
                                headers=headers, timeout=120, **kwargs)

    def register(self, name: str, per_class: int = 3) -> None:
        from azure.storage.blob import BlobServiceClient

        sample = classification("train", per_class=per_class)
        container = BlobServiceClient.from_connection_string(self.azurite.connection_string) \
            .get_container_client("datasets")
        if not container.exists():
            container.create_container()
        url = ""
        for rel, data in sample.files().items():
            blob = container.get_blob_client(f"staging/{name}/{rel}")
            blob.upload_blob(data, overwrite=True)
            url = blob.url if rel == "annotations.json" else url
        response = self.call("PUT", f"datasets/{name}", json={"annotationKind": "imageClassification",
                                                              "annotationFileUris": [url]})
        assert response.status_code < 300, response.text

    def train(self, name: str, dataset: str) -> None:
        body = {"trainingParameters": {"trainingDatasetName": dataset, "timeBudgetInHours": 1,
                                       "modelKind": "Generic-Classifier"}}
        response = self.call("PUT", f"models/{name}", json=body)
        assert response.status_code < 300, response.text

    def model(self, name: str) -> dict:
        return self.call("GET", f"models/{name}").json()

    def wait(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{self.output()[-4000:]}")

    def analyze(self, name: str, image: bytes) -> requests.Response:
        return self.call("POST", "imageanalysis:analyze", params={"model-name": name}, data=image,
                         headers={"Content-Type": "image/jpeg"})


@pytest.fixture
def own_azurite():
    instance = Azurite.on_free_ports(in_memory=True).start()
    yield instance
    instance.stop()


def trainer_pids(host: HostProcess) -> list[int]:
    """The host's `python -m trainer` children."""
    try:
        children = psutil.Process(host.process.pid).children(recursive=True)
        return [c.pid for c in children if c.cmdline()[1:3] == ["-m", "trainer"]]
    except psutil.Error:
        return []


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_hard_crash_of_the_host_keeps_the_trainer_and_its_result(own_azurite, tmp_path):
    host = HostProcess(own_azurite, tmp_path).start()
    pid = 0
    try:
        host.register("crash-set", per_class=4)
        host.train("crash-model", "crash-set")
        # kill -9 the host once its trainer runs and reports
        host.wait(lambda: host.model("crash-model")["status"] == "training" and trainer_pids(host),
                  120, "the trainer to start")
        pid = trainer_pids(host)[0]
        host.kill()
        assert psutil.pid_exists(pid), "the trainer should outlive the host's hard crash"
        host.start()
        final = host.wait(lambda: (m := host.model("crash-model"))["status"] in ("succeeded", "failed", "cancelled")
                          and m, 240, "the model to end")
        assert final["status"] == "succeeded", (final, host.output()[-4000:])
        image = next(iter(classification("test", per_class=1).images.values()))
        response = host.analyze("crash-model", image)
        assert response.status_code == 200, response.text
        assert response.json()["customModelResult"]["tagsResult"]["values"]
        assert f"adopted trainer pid {pid}" in host.output()
    finally:
        host.stop()
        if pid and psutil.pid_exists(pid):  # a failed run leaves no trainer behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def stand_in(tmp_path):
    """A long-running process in its own process group, as a trainer is started."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    yield process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _orphan_record(storage, jobs_dir: Path, job_id: str, pid: int, identity: str | None) -> None:
    """The record a host that died (a pid that has exited) left for a trainer it had started."""
    from loupe.jobs.local import JobRecord

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    jobs_dir.mkdir(parents=True, exist_ok=True)
    JobRecord(job_id=job_id, container="models", prefix="orphan/", spec_blob="orphan/jobs/spec.json",
              storage=storage.blob_account_url, state="running", pid=pid, identity=identity, host_pid=gone.pid,
              host_identity="gone").write(jobs_dir)


@pytest.fixture
def storage(make_settings):
    """Loupe's storage, for a backend without a standby trainer (these tests never train)."""
    from loupe.storage.clients import Storage

    return Storage(make_settings())


def test_a_restarted_backend_adopts_a_live_trainer_and_can_cancel_it(storage, stand_in, tmp_path):
    from loupe.jobs.local import LocalBackend, process_identity

    _orphan_record(storage, tmp_path, "job-orphan", stand_in.pid, process_identity(stand_in.pid))
    backend = LocalBackend(storage, jobs_dir=tmp_path)
    assert backend.status("job-orphan").state.value == "running"
    backend.cancel("job-orphan")
    stand_in.wait(timeout=10)  # SIGTERM reached its process group
    deadline = time.monotonic() + 10
    while backend.status("job-orphan").state.value == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert backend.status("job-orphan").state.value == "completed"


def test_a_recycled_pid_is_never_taken_for_the_trainer(storage, stand_in, tmp_path):
    from loupe.jobs.local import LocalBackend

    _orphan_record(storage, tmp_path, "job-recycled", stand_in.pid, "another-process-start")
    backend = LocalBackend(storage, jobs_dir=tmp_path)
    status = backend.status("job-recycled")
    assert status.state.value == "completed" and "ended" in status.detail
    backend.cancel("job-recycled")
    time.sleep(0.5)
    assert stand_in.poll() is None, "a process that merely reuses the pid must not be signalled"
