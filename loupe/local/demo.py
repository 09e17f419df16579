"""``make run``: Loupe's main job on the embedded default, narrated.

Drops the generated sample datasets into the datasets container exactly as a user would, waits
for the blob-created handler to register them, and shows what Loupe made of them.
"""
from __future__ import annotations

import time

import requests

from loupe.local.stack import LocalStack
from loupe.sample_data import all_samples
from loupe.settings import DEVELOPMENT_API_KEY, get_settings
from loupe.storage.clients import Storage

API_VERSION = "2023-04-01-preview"


class DemoClient:
    def __init__(self, endpoint: str, key: str) -> None:
        self.endpoint = endpoint
        self.session = requests.Session()
        self.session.headers["Ocp-Apim-Subscription-Key"] = key

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, f"{self.endpoint}/computervision/{path}",
                                    params={"api-version": API_VERSION, **kwargs.pop("params", {})},
                                    timeout=120, **kwargs)


def _running(endpoint: str) -> bool:
    try:
        return requests.get(f"{endpoint}/health", timeout=2).ok
    except requests.RequestException:
        return False


def _wait_registered(client: DemoClient, name: str, previous_etag: str | None, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.call("GET", f"datasets/{name}")
        if response.status_code == 200 and response.json().get("eTag") != previous_etag:
            return response.json()
        time.sleep(0.5)
    raise TimeoutError(f"dataset {name} was not registered within {timeout:.0f} s")


def _table(rows: list[list[str]], right: set[int] = frozenset()) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _print_datasets(datasets: list[dict]) -> None:
    rows = [["dataset", "kind", "status", "images", "labels", "categories (images)"]]
    for d in datasets:
        v = d["validation"]
        kind = d["annotationKind"] + (" (multilabel)" if v["multilabel"] else "")
        cats = ", ".join(f"{c['name']} ({c['imageCount']})" for c in v["categories"])
        rows.append([d["name"], kind, f"{v['status']} ({v['depth']} check)", str(v["imageCount"]),
                     str(v["annotationCount"]), cats])
    print()
    print(_table(rows, right={3, 4}))
    for d in datasets:
        for error in d["validation"]["errors"][:5]:
            print(f"  {d['name']}: error {error['code']} at {error['target']}: {error['message']}")


def run_demo(port: int = 7071) -> int:
    settings = get_settings()
    endpoint = f"http://127.0.0.1:{port}"
    key = settings.accepted_api_keys[0]
    stack = None
    if _running(endpoint):
        print(f"Using the Loupe already running at {endpoint}.")
    else:
        print("Starting Loupe locally (Azurite + API + blob watcher)...")
        stack = LocalStack(settings, port=port).start()
    try:
        client = DemoClient(endpoint, key)
        storage = Storage(settings)
        container = storage.container(settings.datasets_container)
        samples = all_samples()
        print(f"\n1. Dropping {len(samples)} generated sample datasets into blob container "
              f"'{settings.datasets_container}' (images first, annotations.json last)...")
        previous = {}
        for sample in samples:
            current = client.call("GET", f"datasets/{sample.name}")
            previous[sample.name] = current.json().get("eTag") if current.status_code == 200 else None
            files = sample.files()
            for rel in sorted(files, key=lambda r: r.endswith(".json")):
                container.get_blob_client(f"{sample.name}/{rel}").upload_blob(files[rel], overwrite=True)
            print(f"   {settings.datasets_container}/{sample.name}/  ({len(files) - 1} images + annotations.json)")
        print("\n2. Waiting for the blob-created handler to validate and register them...")
        registered = [_wait_registered(client, s.name, previous[s.name]) for s in samples]
        _print_datasets(registered)
        listed = client.call("GET", "datasets", params={"top": 30}).json()["value"]
        print(f"\nGET /computervision/datasets lists {len(listed)} datasets. Use the key "
              f"{'from LOUPE_API_KEYS' if not settings.development_mode else DEVELOPMENT_API_KEY} "
              f"with {endpoint}.")
        bad = [d["name"] for d in registered if d["validation"]["status"] != "valid"]
        return 1 if bad else 0
    finally:
        if stack is not None:
            stack.stop()
