"""A private Loupe for benchmarks: in-memory Azurite on free ports and `python -m loupe.local
serve` in its own process (so the benchmark's client does not share the server's GIL)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from loupe.local.azurite import Azurite, free_port  # noqa: E402

API_VERSION = "2023-04-01-preview"
KEY = "benchmark-key"


class BenchStack:
    def __init__(self, **settings: str) -> None:
        self.settings = settings
        self.azurite = Azurite.on_free_ports(in_memory=True)
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOUPE_")}
        env.update({"LOUPE_STORAGE_CONNECTION_STRING": self.azurite.connection_string, "LOUPE_API_KEYS": KEY,
                    "LOUPE_RECONCILE_INTERVAL_SECONDS": "2"})
        env.update({f"LOUPE_{k.upper()}": v for k, v in self.settings.items()})
        return env

    def start_server(self) -> float:
        """Start (or restart) the API process; returns seconds until /health answered."""
        started = time.perf_counter()
        self.process = subprocess.Popen([sys.executable, "-m", "loupe.local", "serve", "--port", str(self.port)],
                                        env=self.env(), cwd=REPO, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        while True:
            try:
                if requests.get(f"{self.endpoint}/health", timeout=1).ok:
                    return time.perf_counter() - started
            except requests.RequestException:
                pass
            if self.process.poll() is not None:
                raise RuntimeError("the API process exited at start")
            time.sleep(0.05)

    def stop_server(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None

    def __enter__(self) -> "BenchStack":
        self.azurite.start()
        self.start_server()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_server()
        self.azurite.stop()

    # --- API helpers
    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        params = {"api-version": API_VERSION, **kwargs.pop("params", {})}
        headers = {"Ocp-Apim-Subscription-Key": KEY, **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.endpoint}/computervision/{path}", params=params, headers=headers,
                                timeout=300, **kwargs)

    def upload(self, folder: str, files: dict[str, bytes]) -> str:
        """Upload files under <datasets>/staging/<folder>/ and return the annotation file's URL."""
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient.from_connection_string(self.azurite.connection_string)
        container = service.get_container_client("datasets")
        if not container.exists():
            container.create_container()
        url = ""
        for name, data in files.items():
            blob = container.get_blob_client(f"staging/{folder}/{name}")
            blob.upload_blob(data, overwrite=True)
            if name.endswith(".json"):
                url = blob.url
        return url

    def register(self, name: str, kind: str, files: dict[str, bytes]) -> None:
        url = self.upload(name, files)
        response = self.call("PUT", f"datasets/{name}", json={"annotationKind": kind, "annotationFileUris": [url]})
        response.raise_for_status()

    def train(self, name: str, dataset: str, kind: str, test: str | None = None, timeout: float = 3600) -> dict:
        body = {"trainingParameters": {"trainingDatasetName": dataset, "timeBudgetInHours": 1, "modelKind": kind}}
        if test:
            body["evaluationParameters"] = {"testDatasetName": test}
        self.call("PUT", f"models/{name}", json=body).raise_for_status()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.call("GET", f"models/{name}").json()
            if model["status"] in ("succeeded", "failed", "cancelled"):
                return model
            time.sleep(0.25)
        raise TimeoutError(name)

    def blob(self, container: str, name: str) -> bytes:
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient.from_connection_string(self.azurite.connection_string)
        return service.get_blob_client(container, name).download_blob().readall()


def shared_files(folder: Path, annotation: str) -> dict[str, bytes]:
    """A ../shared/datasets COCO file and the images it references."""
    import json

    coco = json.loads((folder / annotation).read_text())
    files = {"annotations.json": (folder / annotation).read_bytes()}
    for image in coco["images"]:
        files[image["file_name"]] = (folder / image["file_name"]).read_bytes()
    return files


SHARED = REPO.parent / "shared" / "datasets"
