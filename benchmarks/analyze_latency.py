"""Prediction latency through the HTTP API beside the bare onnxruntime session, same images, same run.

A private Loupe (in-memory Azurite + the API in its own process) trains the sample classifier,
then the test images are sent one at a time:
- bare:    `session.run` on already preprocessed inputs (the floor)
- library: decode + preprocess + run + result JSON in-process (loupe.inference.analyze_result)
- API:     POST /imageanalysis:analyze over HTTP (keep-alive), as a client sees it
Also: the cold first request after the API restarts (session load included) and requests/s with
8 concurrent clients.

    .venv/bin/python benchmarks/analyze_latency.py [--rounds 5]
"""
from __future__ import annotations

import argparse
import http.client
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests
from _stack import API_VERSION, KEY, BenchStack

from loupe.artifacts import LABELS_FILE, MODEL_FILE, PREPROCESSING_FILE
from loupe.inference import FolderModelFiles, analyze_result, load_predictor
from loupe.inference.analyze import decode_for
from loupe.preprocess import to_input
from loupe.sample_data import classification

MODEL = "latency-classifier"


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def timed(function, items, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        for item in items:
            started = time.perf_counter()
            function(item)
            out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="passes over the 40 test images")
    parser.add_argument("--concurrent-requests", type=int, default=400)
    args = parser.parse_args()
    test = classification("test")
    images = list(test.images.values())
    with BenchStack() as stack:
        stack.register("latency-train", "imageClassification", classification("train").files())
        model = stack.train(MODEL, "latency-train", "Generic-Classifier")
        assert model["status"] == "succeeded", model
        folder = Path(tempfile.mkdtemp()) / MODEL
        folder.mkdir()
        for name in (MODEL_FILE, LABELS_FILE, PREPROCESSING_FILE):
            (folder / name).write_bytes(stack.blob("models", f"{MODEL}/{name}"))
        predictor = load_predictor(FolderModelFiles(folder.parent), MODEL)
        session = predictor._session  # the very session type and options the API uses
        tensors = [to_input(decode_for(predictor, data)[0], predictor.preprocessing)[0][None] for data in images]
        input_name = predictor.preprocessing.input_name

        url = f"{stack.endpoint}/computervision/imageanalysis:analyze"
        params = {"api-version": API_VERSION, "model-name": MODEL}
        headers = {"Ocp-Apim-Subscription-Key": KEY, "Content-Type": "image/jpeg"}
        # a lean keep-alive client (http.client), so the figures are the server's, not requests'
        path = f"/computervision/imageanalysis:analyze?api-version={API_VERSION}&model-name={MODEL}"
        connection: list[http.client.HTTPConnection] = []

        def api(data: bytes) -> None:
            if not connection:
                connection.append(http.client.HTTPConnection("127.0.0.1", stack.port, timeout=60))
            connection[0].request("POST", path, body=data, headers=headers)
            response = connection[0].getresponse()
            body = response.read()
            assert response.status == 200, body

        def reconnect() -> None:
            connection.clear()

        # cold: a fresh API process, first request loads the model
        stack.stop_server()
        startup = stack.start_server()
        reconnect()
        started = time.perf_counter()
        api(images[0])
        cold = (time.perf_counter() - started) * 1000
        for data in images[:5]:  # warm up every layer
            api(data)
            analyze_result(predictor, data)

        bare = timed(lambda t: session.run(None, {input_name: t}), tensors, args.rounds)
        library = timed(lambda d: analyze_result(predictor, d), images, args.rounds)
        served = timed(api, images, args.rounds)

        def client(worker: int) -> int:
            own = requests.Session()
            count = args.concurrent_requests // 8
            for n in range(count):
                response = own.post(url, params=params, data=images[(worker + n) % len(images)], headers=headers,
                                    timeout=60)
                assert response.status_code == 200
            return count

        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            total = sum(pool.map(client, range(8)))
        throughput = total / (time.perf_counter() - started)

    sizes = sorted(len(data) for data in images)
    print(f"\n{len(images)} test images x {args.rounds} rounds, EfficientNet-Lite0 classifier "
          f"({predictor.preprocessing.size[1]}x{predictor.preprocessing.size[0]} input), JPEGs of "
          f"{sizes[0] // 1024}-{sizes[-1] // 1024} KB")
    print(f"{'':<34}{'p50 ms':>9}{'p95 ms':>9}")
    for label, values in (("bare onnxruntime session.run", bare), ("library (decode+preprocess+run)", library),
                          ("HTTP API (client-side)", served)):
        print(f"{label:<34}{percentile(values, 50):>9.2f}{percentile(values, 95):>9.2f}")
    p50_api, p50_lib, p50_bare = (statistics.median(v) for v in (served, library, bare))
    print(f"\nAPI overhead at p50: {100 * (p50_api / p50_lib - 1):+.0f}% over the library call, "
          f"{100 * (p50_api / p50_bare - 1):+.0f}% over the bare session.run")
    print(f"cold: API process ready in {startup * 1000:.0f} ms, first request (model load) {cold:.0f} ms")
    print(f"throughput at concurrency 8: {throughput:.1f} requests/s")


if __name__ == "__main__":
    main()
