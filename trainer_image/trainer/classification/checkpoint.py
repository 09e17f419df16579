"""Checkpoints of a classifier run in a CheckpointStore: the cached boundary features (one
object per augmented view, written once) and the training state (``RunState``, written at
phase boundaries and every ~30 s). Every object carries the run's compatibility key; anything
that does not match (other data, labels, seed, backbone or recipe version) or does not parse is
ignored, and the run starts over.

The state is typed (``RunState`` and the pass records below); on the wire it is a plain dict of
numbers, strings and tensors written with ``torch.save`` and read back with
``torch.load(weights_only=True)``, so a checkpoint blob can never run code.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from typing import Any

import torch

from trainer.classification.finetune import FinetuneState
from trainer.context import CheckpointStore

log = logging.getLogger(__name__)

PREFIX = "classifier"
STATE_NAME = f"{PREFIX}-state.pt"


@dataclass
class PassProgress:
    """A training pass interrupted while fine-tuning."""

    linear_head: dict[str, torch.Tensor]  # the head fine-tuning started from
    finetune: FinetuneState

    def to_payload(self) -> dict[str, Any]:
        return {"done": False, "linear_head": self.linear_head, "finetune": dict(vars(self.finetune))}


@dataclass
class PassResult:
    """A finished training pass."""

    weights: dict[str, torch.Tensor]  # the entries training can change (tail stages and head)
    # the split pass only: the method the held-out images chose ("finetune" or "linear"), each
    # method's held-out (accuracy, -log loss), and the chosen model's held-out logits [N, C]
    method: str = ""
    selection: dict[str, tuple[float, float]] = field(default_factory=dict)
    holdout_scores: torch.Tensor | None = None

    def to_payload(self) -> dict[str, Any]:
        return {"done": True, **vars(self)}


@dataclass
class RunState:
    """What a resumed run continues from (the cached features are separate objects)."""

    views: int  # augmented views per image (the plan of the first attempt stands)
    epochs: int | None = None  # fine-tuning epochs per pass, once planned
    passes: dict[str, PassProgress | PassResult] = field(default_factory=dict)  # by pass name

    def to_payload(self) -> dict[str, Any]:
        return {"views": self.views, "epochs": self.epochs,
                "passes": {name: record.to_payload() for name, record in self.passes.items()}}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> RunState:
        """Raises KeyError, TypeError or ValueError on anything not written by ``to_payload``."""
        passes: dict[str, PassProgress | PassResult] = {}
        for name, record in payload["passes"].items():
            record = dict(record)
            if record.pop("done"):
                passes[str(name)] = PassResult(**record)
            else:
                passes[str(name)] = PassProgress(record["linear_head"], FinetuneState(**record["finetune"]))
        epochs = payload["epochs"]
        return cls(views=int(payload["views"]), epochs=None if epochs is None else int(epochs), passes=passes)


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

    def load_state(self) -> RunState | None:
        obj = self._load(STATE_NAME)
        if obj is None:
            return None
        try:
            return RunState.from_payload(obj["state"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("checkpoint %s does not hold a run state (%s); ignoring it", STATE_NAME, exc)
            return None

    def save_state(self, state: RunState) -> None:
        self._save(STATE_NAME, {"state": state.to_payload()})
