"""PredictorCache: LRU bound, lazy single loads, version-driven reloads, invalidation."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from loupe.inference import ModelNotFound, ModelUnusable, PredictorCache
from tests.inference.builders import DictModelFiles, classifier_artifacts

ONNX_READ = "model.onnx"


@pytest.fixture(scope="module")
def artifacts():
    """Two distinct classifiers' artifacts."""
    return (
        classifier_artifacts(["a", "b"], "multiclass", seed=10)[0],
        classifier_artifacts(["x", "y", "z"], "multiclass", seed=11)[0],
    )


def _loads(store: DictModelFiles, name: str) -> int:
    return store.reads[(name, ONNX_READ)]


def test_lazy_and_lru_bounded(artifacts):
    store = DictModelFiles()
    for name in ("a", "b", "c"):
        store.put(name, artifacts[0])
    cache = PredictorCache(store, max_models=2)
    assert len(cache) == 0 and _loads(store, "a") == 0  # nothing loaded up front

    first_a = cache.get("a")
    cache.get("b")
    assert cache.get("a") is first_a  # hit: same object, no second load
    cache.get("c")  # evicts b, the least recently used
    assert cache.cached_models() == ["a", "c"]
    assert [_loads(store, n) for n in "abc"] == [1, 1, 1]

    cache.get("b")  # back, so it is loaded again and evicts a
    assert _loads(store, "b") == 2
    assert cache.cached_models() == ["c", "b"]


def test_reloads_when_the_version_changes(artifacts):
    store = DictModelFiles()
    v1 = store.put("m", artifacts[0])
    cache = PredictorCache(store, max_models=4)
    old = cache.get("m")
    assert old.version == v1 and old.labels == ["a", "b"]

    v2 = store.put("m", artifacts[1])  # retrained under the same name
    new = cache.get("m")
    assert new is not old and new.version == v2 and new.labels == ["x", "y", "z"]
    assert cache.get("m") is new
    assert _loads(store, "m") == 2


def test_deleted_model_is_not_found_and_evicted(artifacts):
    store = DictModelFiles()
    store.put("m", artifacts[0])
    cache = PredictorCache(store, max_models=4)
    cache.get("m")
    store.delete("m")
    with pytest.raises(ModelNotFound):
        cache.get("m")
    assert cache.cached_models() == []
    with pytest.raises(ModelNotFound):
        cache.get("never-trained")


def test_invalidate_forces_a_fresh_load(artifacts):
    store = DictModelFiles()
    store.put("m", artifacts[0])
    cache = PredictorCache(store, max_models=4)
    first = cache.get("m")
    cache.invalidate("m")
    assert cache.cached_models() == []
    assert cache.get("m") is not first
    assert _loads(store, "m") == 2


def test_version_ttl_skips_the_version_round_trip(artifacts):
    store = DictModelFiles()
    store.put("m", artifacts[0])
    cache = PredictorCache(store, max_models=4, version_ttl_s=3600)
    cache.get("m")
    calls = store.version_calls
    for _ in range(5):
        cache.get("m")
    assert store.version_calls == calls
    # without a TTL every get asks
    eager = PredictorCache(store, max_models=4)
    eager.get("m")
    calls = store.version_calls
    eager.get("m")
    assert store.version_calls == calls + 1


def test_concurrent_first_requests_load_once(artifacts):
    store = DictModelFiles(read_delay_s=0.2)  # a slow blob read widens the race
    store.put("m", artifacts[0])
    store.put("other", artifacts[1])
    cache = PredictorCache(store, max_models=4)
    start = threading.Barrier(9)

    def first_request(name: str):
        start.wait()
        return cache.get(name)

    with ThreadPoolExecutor(9) as pool:
        futures = [pool.submit(first_request, "m") for _ in range(8)] + [pool.submit(first_request, "other")]
        results = [f.result(timeout=30) for f in futures]
    assert _loads(store, "m") == 1
    assert all(p is results[0] for p in results[:8])
    assert results[8].labels == ["x", "y", "z"]


def test_a_failed_load_reaches_every_waiter_and_is_not_cached(artifacts):
    store = DictModelFiles(read_delay_s=0.3)
    store.put("m", {**artifacts[0], "model.onnx": b"garbage"})
    cache = PredictorCache(store, max_models=4)
    start = threading.Barrier(4)

    def request():
        start.wait()
        with pytest.raises(ModelUnusable):
            cache.get("m")

    with ThreadPoolExecutor(4) as pool:
        for f in [pool.submit(request) for _ in range(4)]:
            f.result(timeout=30)
    assert _loads(store, "m") == 1
    assert cache.cached_models() == []
    store.put("m", artifacts[0])  # fixed: the next request loads it
    assert cache.get("m").labels == ["a", "b"]


def test_max_models_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        PredictorCache(DictModelFiles(), max_models=0)


def test_invalidate_during_a_load_keeps_the_stale_result_out(artifacts):
    store = DictModelFiles(read_delay_s=0.3)
    store.put("m", artifacts[0])
    cache = PredictorCache(store, max_models=4)
    with ThreadPoolExecutor(1) as pool:
        loading = pool.submit(cache.get, "m")
        while store.reads[("m", ONNX_READ)] == 0 and not loading.done():
            threading.Event().wait(0.01)  # the load has started reading
        cache.invalidate("m")  # e.g. the model was deleted meanwhile
        assert loading.result(timeout=30).labels == ["a", "b"]  # that request is still answered
    assert cache.cached_models() == []
