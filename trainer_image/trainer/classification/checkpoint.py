"""Checkpoints of a classifier run in a CheckpointStore: the cached boundary features (one
object per augmented view, written once) and the training state (written at phase boundaries
and every ~30 s). Every object carries the run's compatibility key; anything that does not
match (other data, labels, seed, backbone or recipe) is ignored."""

from __future__ import annotations

import io
import logging
from typing import Any

import torch

from trainer.context import CheckpointStore

log = logging.getLogger(__name__)

PREFIX = "classifier"


def to_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def from_bytes(data: bytes) -> Any:
    # weights_only: a checkpoint blob must never be able to run code
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


class RunCheckpoints:
    def __init__(self, store: CheckpointStore, key: str) -> None:
        self.store = store
        self.key = key
        self.saves = 0

    def _load(self, name: str) -> dict | None:
        try:
            data = self.store.load(name)
        except Exception as exc:  # noqa: BLE001 - a broken store must not fail training: start over
            log.warning("checkpoint %s could not be read (%s); ignoring it", name, exc)
            return None
        if data is None:
            return None
        try:
            obj = from_bytes(data)
        except Exception as exc:  # noqa: BLE001 - truncated or foreign bytes: start over
            log.warning("checkpoint %s is unreadable (%s); ignoring it", name, exc)
            return None
        if not isinstance(obj, dict) or obj.get("key") != self.key:
            return None
        return obj

    def _save(self, name: str, obj: dict) -> None:
        self.store.save(name, to_bytes({"key": self.key, **obj}))
        self.saves += 1

    def load_view(self, kind: str, view: int) -> torch.Tensor | None:
        obj = self._load(f"{PREFIX}-{kind}-view-{view:03d}.pt")
        return obj["maps"] if obj is not None else None

    def save_view(self, kind: str, view: int, maps: torch.Tensor) -> None:
        self._save(f"{PREFIX}-{kind}-view-{view:03d}.pt", {"maps": maps})

    def load_state(self) -> dict | None:
        return self._load(f"{PREFIX}-state.pt")

    def save_state(self, state: dict) -> None:
        self._save(f"{PREFIX}-state.pt", state)
