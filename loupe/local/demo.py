"""``make run``: Loupe's main job on the embedded default, narrated.

Drops the generated sample datasets into the datasets container exactly as a user would, waits
for the blob-created handler to register them, and shows what Loupe made of them.
"""
from __future__ import annotations

import sys
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


# (model name, training dataset, test dataset, model kind)
DEMO_MODELS = [
    ("sample-shapes-classifier", "sample-shapes", "sample-shapes-test", "Generic-Classifier"),
    ("sample-objects-detector", "sample-objects", "sample-objects-test", "Generic-Detector"),
]
TERMINAL = {"succeeded", "failed", "cancelled"}


class ProgressLine:
    """One status line per run: redrawn in place on a terminal, else printed when the phase
    changes or the percent moves by 10 points (logs stay short)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.interactive = sys.stdout.isatty()
        self.last_key: tuple | None = None
        self.width = 0

    def show(self, body: dict) -> None:
        progress = body.get("progress") or {}
        phase, percent = progress.get("phase"), float(progress.get("percent", 0.0))
        text = f"   {self.label}: {body['status']}"
        if progress:
            bar = "#" * int(percent / 5)
            text += f" [{bar:<20}] {percent:5.1f}% {phase}"
            if progress.get("message"):
                text += f" - {progress['message']}"
            if progress.get("etaSeconds") is not None:
                text += f" (about {progress['etaSeconds']:.0f} s left)"
        if self.interactive:
            padded = text[:150].ljust(self.width)
            self.width = len(text[:150])
            print("\r" + padded, end="", flush=True)
            return
        key = (body["status"], phase, int(percent // 10))
        if key != self.last_key:
            print(text[:200], flush=True)
            self.last_key = key

    def done(self) -> None:
        if self.interactive:
            print(flush=True)


def _wait(client: DemoClient, path: str, label: str, terminal: set[str], timeout: float = 1800) -> dict:
    """Poll until a terminal status, showing the progress the trainer reports."""
    deadline = time.monotonic() + timeout
    line = ProgressLine(label)
    try:
        while time.monotonic() < deadline:
            body = client.call("GET", path).json()
            line.show(body)
            if body["status"] in terminal:
                return body
            time.sleep(1.0)
    finally:
        line.done()
    raise TimeoutError(f"{label} did not finish within {timeout:.0f} s")


def _fresh_model(client: DemoClient, name: str) -> None:
    """Delete a model left by an earlier run (cancelling it first if it is still training)."""
    current = client.call("GET", f"models/{name}")
    if current.status_code == 404:
        return
    if current.json()["status"] not in TERMINAL:
        client.call("POST", f"models/{name}:cancel")
        _wait(client, f"models/{name}", name, TERMINAL)
    client.call("DELETE", f"models/{name}").raise_for_status()


def _metrics_line(performance: dict) -> str:
    keys = ("accuracyTop1", "accuracyTop5", "averagePrecision", "calibrationECE",
            "meanAveragePrecision30", "meanAveragePrecision50", "meanAveragePrecision75")
    return ", ".join(f"{k} {performance[k]:.3f}" for k in keys if k in performance)


def _train(client: DemoClient, name: str, dataset: str, test: str, kind: str) -> dict:
    _fresh_model(client, name)
    body = {"trainingParameters": {"trainingDatasetName": dataset, "timeBudgetInHours": 1, "modelKind": kind},
            "evaluationParameters": {"testDatasetName": test}}
    started = time.monotonic()
    created = client.call("PUT", f"models/{name}", json=body)
    created.raise_for_status()
    model = _wait(client, f"models/{name}", name, TERMINAL)
    print(f"   -> {model['status']} in {time.monotonic() - started:.0f} s "
          f"(trainingCostInMinutes {model['trainingCostInMinutes']})")
    if model["status"] == "succeeded":
        print(f"   modelPerformance on {test}: {_metrics_line(model['modelPerformance'])}")
    else:
        print(f"   error: {model.get('error')}")
    return model


def _evaluate(client: DemoClient, model: str, test: str) -> dict:
    name = "demo-eval"
    client.call("DELETE", f"models/{model}/evaluations/{name}")
    client.call("PUT", f"models/{model}/evaluations/{name}",
                json={"evaluationParameters": {"testDatasetName": test}}).raise_for_status()
    evaluation = _wait(client, f"models/{model}/evaluations/{name}", f"{model}/{name}", {"succeeded", "failed"})
    if evaluation["status"] == "succeeded":
        print(f"   {_metrics_line(evaluation['modelPerformance'])}")
    else:
        print(f"   error: {evaluation.get('error')}")
    return evaluation


def _predict(client: DemoClient, model: str, sample, count: int = 4) -> None:
    names = {c["id"]: c["name"] for c in sample.coco["categories"]}
    truth: dict[int, list[str]] = {}
    for annotation in sample.coco["annotations"]:
        truth.setdefault(annotation["image_id"], []).append(names[annotation["category_id"]])
    for image in sample.coco["images"][:count]:
        response = client.call("POST", "imageanalysis:analyze", params={"model-name": model},
                               data=sample.images[image["file_name"]], headers={"Content-Type": "image/jpeg"})
        if response.status_code != 200:
            print(f"   {image['file_name']}: HTTP {response.status_code} {response.text[:200]}")
            continue
        result = response.json()["customModelResult"]
        expected = ", ".join(sorted(truth.get(image["id"], [])))
        if "tagsResult" in result:
            top = result["tagsResult"]["values"][0]
            print(f"   {image['file_name']}: {top['name']} ({top['confidence']:.2f})   truth: {expected}")
        else:
            objects = result["objectsResult"]["values"]
            found = ", ".join(f"{o['tags'][0]['name']} {o['tags'][0]['confidence']:.2f} at "
                              f"({o['boundingBox']['x']},{o['boundingBox']['y']},{o['boundingBox']['w']}x"
                              f"{o['boundingBox']['h']})" for o in objects if o["tags"][0]["confidence"] >= 0.7)
            print(f"   {image['file_name']}: {found or 'nothing above 0.7'}   truth: {expected}")


def run_demo(port: int = 7071) -> int:
    settings = get_settings()
    endpoint = f"http://127.0.0.1:{port}"
    key = settings.accepted_api_keys[0]
    stack = None
    if _running(endpoint):
        print(f"Using the Loupe already running at {endpoint}.")
    else:
        print("Starting Loupe locally (Azurite + API + blob watcher + local trainer backend)...")
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
        if any(d["validation"]["status"] != "valid" for d in registered):
            return 1
        failures = 0
        print("\n3. Training (PUT /computervision/models/<name>), budget 1 hour - the trainer stops when converged:")
        trained = []
        for name, dataset, test, kind in DEMO_MODELS:
            print(f"\n   {name}: {kind} on {dataset}")
            model = _train(client, name, dataset, test, kind)
            failures += model["status"] != "succeeded"
            if model["status"] == "succeeded":
                trained.append((name, test))
        print("\n4. Evaluating (PUT /computervision/models/<name>/evaluations/demo-eval):")
        for name, test in trained:
            print(f"\n   {name} on {test}:")
            failures += _evaluate(client, name, test)["status"] != "succeeded"
        print("\n5. Predicting test images (POST /computervision/imageanalysis:analyze?model-name=<name>):")
        by_name = {s.name: s for s in samples}
        for name, test in trained:
            print(f"\n   {name}:")
            _predict(client, name, by_name[test])
        print(f"\nDone. The API is {'still running at ' + endpoint if stack is None else 'stopped'}; "
              f"`make serve` keeps it up. Key: "
              f"{'from LOUPE_API_KEYS' if not settings.development_mode else DEVELOPMENT_API_KEY}.")
        return 1 if failures else 0
    finally:
        if stack is not None:
            stack.stop()
