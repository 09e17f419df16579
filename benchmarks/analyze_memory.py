"""The API server's memory (RSS) under a burst of the largest images the prediction limits allow.

A private Loupe (in-memory Azurite + the API in its own process, benchmarks/_stack.py) serves a
small real ONNX classifier with a 224 x 224 input (stored as a succeeded model, no training). Then,
for each image, 8 concurrent analyze calls, sampling the server's RSS every 5 ms:
- a 16000 x 16000 JPEG of about 6 MB (a noisy gradient: not a bomb, decoded at its draft size);
- the largest PNG that passes the decode rules (11570^2 RGB, 511 MiB decoded, a noisy row every 100);
- three decompression bombs (PNGs of zeros: 11000^2 RGBA, 8000^2 RGB, 11000^2 16-bit grey).
Prints the baseline (model loaded), the peak during each burst and what stays once it settled.

    .venv/bin/python benchmarks/analyze_memory.py
"""
from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
from _stack import KEY, BenchStack
from PIL import Image

from loupe.enums import ModelKind
from loupe.imaging import PREDICTION_LIMITS
from loupe.models.record import ModelRecord
from loupe.runs.record import RunStatus
from loupe.services import Services
from loupe.settings import Settings
from tests.inference.builders import classifier_artifacts
from tests.inference.images import png_rows

MODEL = "memory-classifier"
CONCURRENCY = 8
MiB = 1024 * 1024


def seed_model(connection_string: str) -> None:
    files, _ = classifier_artifacts(["a", "b", "c"], "multiclass", size=(224, 224), seed=1)
    services = Services(Settings(storage_connection_string=connection_string, api_keys=[KEY])).ready()
    try:
        container = services.storage.container(services.settings.models_container)
        if not container.exists():
            container.create_container()
        for name, data in files.items():
            container.upload_blob(f"{MODEL}/{name}", data, overwrite=True)
        services.models.repo.store.create(ModelRecord(name=MODEL, training_dataset="none", budget_hours=1,
                                                      model_kind=ModelKind.CLASSIFIER,
                                                      status=RunStatus.SUCCEEDED, run_id="run-1"))
    finally:
        services.close()


def largest_jpeg(side: int = 16000) -> bytes:
    """A noisy gradient, at the best JPEG quality that stays within the 6 MB limit."""
    grey = Image.linear_gradient("L").resize((side, side))
    noise = Image.effect_noise((side, side), 24)
    image = Image.merge("RGB", (grey, noise, grey.transpose(Image.Transpose.ROTATE_90)))
    del grey, noise
    best = b""
    for quality in (75, 70, 65, 60, 50, 40, 30, 20, 10):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality)
        best = out.getvalue()
        if len(best) <= PREDICTION_LIMITS.max_bytes:
            return best
    return best


def largest_png() -> bytes:
    # 11570^2 x 4 bytes (Pillow's RGB) = 510.7 MiB, plus the reduced copies: just within the 512 MiB
    # prediction decode budget, at about 120:1
    return png_rows(11570, 11570, noisy_every=100, seed=7)


def bombs() -> dict[str, bytes]:
    return {"bomb 11000^2 RGBA PNG": png_rows(11000, 11000, color_type=6),
            "bomb 8000^2 RGB PNG": png_rows(8000, 8000),
            "bomb 11000^2 16-bit grey PNG": png_rows(11000, 11000, color_type=0, bit_depth=16)}


def settled(process: psutil.Process, timeout_s: float = 15.0) -> int:
    last = process.memory_info().rss
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = process.memory_info().rss
        if abs(now - last) < 2 * MiB:
            return now
        last = now
    return last


def burst(stack: BenchStack, process: psutil.Process, data: bytes) -> tuple[int, list[tuple[int, str]], float]:
    """(peak RSS, (status, body) answers, seconds) of CONCURRENCY simultaneous analyze calls of ``data``."""
    peak = [process.memory_info().rss]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            done.wait(0.005)

    def call(_: int) -> tuple[int, str]:
        response = stack.call("POST", "imageanalysis:analyze", params={"model-name": MODEL}, data=data,
                              headers={"Content-Type": "application/octet-stream"})
        return response.status_code, response.text

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        answers = list(pool.map(call, range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    return peak[0], answers, elapsed


def main() -> None:
    images = {"JPEG 16000^2 (largest allowed)": largest_jpeg(), "PNG 11570^2 RGB (largest that passes)": largest_png(),
              **bombs()}
    with BenchStack() as stack:
        seed_model(stack.azurite.connection_string)
        small = io.BytesIO()
        Image.new("RGB", (640, 480), (90, 120, 200)).save(small, "JPEG")
        for _ in range(3):  # load the model, warm every layer
            assert stack.call("POST", "imageanalysis:analyze", params={"model-name": MODEL}, data=small.getvalue(),
                              headers={"Content-Type": "image/jpeg"}).status_code == 200
        process = psutil.Process(stack.process.pid)
        baseline = settled(process)
        print(f"\nAPI server RSS, {CONCURRENCY} concurrent analyze calls per image; baseline (model loaded) "
              f"{baseline / MiB:.0f} MiB")
        print(f"{'image':<40}{'file':>9}{'answers':>14}{'peak MiB':>10}{'+MiB':>7}{'after MiB':>11}{'s':>6}")
        refusals = {}
        for label, data in images.items():
            peak, answers, elapsed = burst(stack, process, data)
            after = settled(process)
            codes = [code for code, _ in answers]
            summary = ",".join(f"{codes.count(c)}x{c}" for c in sorted(set(codes)))
            refusals.update({label: body for code, body in answers if code != 200})
            print(f"{label:<40}{len(data) / MiB:>7.2f}MB{summary:>14}{peak / MiB:>10.0f}"
                  f"{(peak - baseline) / MiB:>7.0f}{after / MiB:>11.0f}{elapsed:>6.1f}")
        for label, body in refusals.items():
            print(f"{label}: {body[:400]}")


if __name__ == "__main__":
    main()
