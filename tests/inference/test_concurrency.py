"""One session serves concurrent requests: 8 threads x 50 predictions equal the sequential results."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from loupe.inference import PredictorCache, analyze_result
from tests.inference.builders import DictModelFiles
from tests.inference.images import encode, noise_image, white_box_on_black

THREADS = 8
PER_THREAD = 50


def _images() -> list[bytes]:
    images = [encode(noise_image(60 + 13 * i, 90 + 7 * i, seed=i), "PNG") for i in range(6)]
    images.append(encode(white_box_on_black(400, 300, (50, 40, 250, 200)), "JPEG"))
    images.append(encode(white_box_on_black(200, 500, (20, 300, 180, 480)), "PNG"))
    return images


@pytest.mark.parametrize("fixture", ["multiclass", "multilabel", "detector_letterbox"])
def test_threads_match_sequential(request, fixture):
    files = request.getfixturevalue(fixture)
    files = files[0] if isinstance(files, tuple) else files
    store = DictModelFiles()
    store.put("m", files)
    cache = PredictorCache(store, max_models=2, intra_op_threads=2)
    images = _images()
    expected = [analyze_result(cache.get("m"), data) for data in images]
    start = threading.Barrier(THREADS)

    def worker(offset: int) -> list[tuple[int, dict]]:
        start.wait()
        out = []
        for i in range(PER_THREAD):
            k = (offset + i) % len(images)
            out.append((k, analyze_result(cache.get("m"), images[k])))
        return out

    with ThreadPoolExecutor(THREADS) as pool:
        results = [f.result(timeout=120) for f in [pool.submit(worker, t) for t in range(THREADS)]]
    flat = [item for chunk in results for item in chunk]
    assert len(flat) == THREADS * PER_THREAD
    mismatches = [k for k, got in flat if got != expected[k]]
    assert mismatches == []
    assert store.reads[("m", "model.onnx")] == 1
