"""An LRU of loaded predictors: lazy, bounded, thread-safe, reloads retrained models.

get() asks ModelFiles.version() (e.g. a blob HEAD for the etag) and reloads when it changed;
``version_ttl_s`` lets a hot model skip that round trip for a few seconds. Concurrent first
requests for one model share a single load (a Future per (name, version)); loads of different
models run in parallel, outside the cache lock. An evicted predictor stays alive until the
requests still using it finish (plain references), so eviction never breaks a prediction.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass

from loupe.inference.errors import ModelNotFound
from loupe.inference.files import ModelFiles
from loupe.inference.predictor import Predictor, load_predictor


@dataclass
class _Entry:
    predictor: Predictor
    checked_at: float


class PredictorCache:
    def __init__(
        self,
        files: ModelFiles,
        max_models: int,
        *,
        intra_op_threads: int | None = None,
        version_ttl_s: float = 0.0,
    ) -> None:
        if max_models < 1:
            raise ValueError(f"max_models must be at least 1, got {max_models}")
        self._files = files
        self._max_models = max_models
        self._threads = intra_op_threads
        self._ttl = version_ttl_s
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._loading: dict[tuple[str, str], Future[Predictor]] = {}
        # bumped by invalidate(): a load that started before it must not repopulate the cache
        self._generation: dict[str, int] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def cached_models(self) -> list[str]:
        """Names held, least recently used first."""
        with self._lock:
            return list(self._entries)

    def get(self, model_name: str) -> Predictor:
        """The predictor for the model's current version; raises ModelNotFound, ModelUnusable."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(model_name)
            if entry is not None and now - entry.checked_at < self._ttl:
                self._entries.move_to_end(model_name)
                return entry.predictor
        version = self._files.version(model_name)  # I/O: outside the lock
        with self._lock:
            if version is None:
                self._entries.pop(model_name, None)
                raise ModelNotFound(model_name)
            entry = self._entries.get(model_name)
            if entry is not None and entry.predictor.version == version:
                entry.checked_at = now
                self._entries.move_to_end(model_name)
                return entry.predictor
            key = (model_name, version)
            future = self._loading.get(key)
            owner = future is None
            if owner:
                future = self._loading[key] = Future()
                generation = self._generation.get(model_name, 0)
        if not owner:
            return future.result()
        try:
            predictor = load_predictor(self._files, model_name, intra_op_threads=self._threads)
        except BaseException as exc:
            with self._lock:
                del self._loading[key]
            future.set_exception(exc)
            raise
        with self._lock:
            del self._loading[key]
            if self._generation.get(model_name, 0) == generation:
                self._entries[model_name] = _Entry(predictor, time.monotonic())
                self._entries.move_to_end(model_name)
                while len(self._entries) > self._max_models:
                    self._entries.popitem(last=False)
        future.set_result(predictor)
        return predictor

    def invalidate(self, model_name: str) -> None:
        """Forget the model (deleted or retrained here); the next get() loads it afresh."""
        with self._lock:
            self._entries.pop(model_name, None)
            self._generation[model_name] = self._generation.get(model_name, 0) + 1
