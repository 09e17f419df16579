"""The local stand-in for Event Grid: polls the datasets container and delivers a blob-created
event for every new or changed annotation file (``datasets/<name>/*.json``, the blobs Event
Grid's subscription lets through on Azure; the conversion marker ``.loupe-convert.json`` of
docs/formats.md#drop is one of them) to the same handler the Azure function calls.

It remembers what it delivered only in memory; after a restart it delivers everything once
more, and the handler's claim table (one row per blob + ETag) turns those into no-ops, so
unchanged files are not registered again.
"""
from __future__ import annotations

import logging

from loupe.datasets.drop import DropRegistrar
from loupe.local.periodic import Periodic

log = logging.getLogger(__name__)


class BlobWatcher:
    def __init__(self, registrar: DropRegistrar, interval: float = 1.0) -> None:
        self.registrar = registrar
        self.interval = interval
        self._seen: dict[str, str] = {}
        self._loop = Periodic("blob-watcher", interval, self.poll_once)

    def poll_once(self) -> list[tuple[str, str]]:
        """Deliver events for new/changed annotation files; returns (blob, outcome) pairs."""
        delivered = []
        for blob in self.registrar.annotation_blobs():
            if self._seen.get(blob.name) == blob.etag:
                continue
            try:
                result = self.registrar.handle(blob.name, blob.etag)
            except Exception:
                log.exception("handling %s failed; it will be retried", blob.name)
                continue
            self._seen[blob.name] = blob.etag
            delivered.append((blob.name, result.outcome))
            if result.outcome in ("registered", "revalidated"):
                log.info("dataset %s %s from %s: %s", result.dataset, result.outcome, blob.name, result.detail)
        return delivered

    def start(self) -> "BlobWatcher":
        self._loop.start()
        return self

    def stop(self) -> None:
        self._loop.stop()
