"""Checkpoints of a detector run: everything a resumed run needs to continue exactly where
the interrupted one was - weights, optimizer, schedule state, the torch generator."""
from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from trainer.context import TrainingContext
from trainer.detection.config import DetectorConfig
from trainer.detection.data import DetectionExample, fingerprint
from trainer.detection.options import DetectorOptions

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "detector.ckpt"
CHECKPOINT_FORMAT = 1


@dataclass
class TrainingState:
    iteration: int = 0
    decay_start: int | None = None  # the final decay: from this iteration ...
    decay_length: int = 0  # ... for this many
    decay_reason: str = ""  # why it started: "converged" | "max_iterations" | "deadline"
    history: list[dict] = field(default_factory=list)  # DetectorResult.history
    windows: list[float] = field(default_factory=list)  # mean loss per check window
    maps: list[float] = field(default_factory=list)  # hold-out mAP@50 per check
    best_map: float = -1.0
    lr_scale: float = 1.0  # lowered after a divergence
    window_sum: float = 0.0
    window_count: int = 0

    def start_decay(self, length: int, reason: str) -> None:
        self.decay_start, self.decay_length, self.decay_reason = self.iteration, max(1, length), reason

    @property
    def planned(self) -> int | None:
        return None if self.decay_start is None else self.decay_start + self.decay_length


def save(ctx: TrainingContext, key: str, config: DetectorConfig, state: TrainingState, model: nn.Module,
          optimizer: torch.optim.Optimizer, best: dict | None) -> None:
    payload = {
        "format": CHECKPOINT_FORMAT, "key": key, "config": config.model_dump(mode="json"),
        "state": dict(state.__dict__), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "torch_rng": generator_state(), "best": best,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    ctx.checkpoints.save(CHECKPOINT_NAME, buffer.getvalue())


def load(ctx: TrainingContext, key: str, config: DetectorConfig) -> dict | None:
    data = ctx.checkpoints.load(CHECKPOINT_NAME)
    if data is None:
        return None
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a torn or foreign file: start over rather than fail the run
        log.warning("ignoring unreadable detector checkpoint: %s", exc)
        return None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT or payload.get("key") != key \
            or payload.get("config") != config.model_dump(mode="json"):
        log.warning("ignoring a detector checkpoint of other data or settings")
        return None
    return payload


def run_key(examples: Sequence[DetectionExample], labels: Sequence[str], seed: int, options: DetectorOptions) -> str:
    """What a checkpoint must match to be resumed: the data, the seed and the options that
    shape the model (not those about where or how fast it runs)."""
    shaping = replace(options, device=None, threads=None, checkpoint_every_seconds=0.0, export_reserve_seconds=0.0)
    return f"{fingerprint(examples, labels)}/{seed}/{shaping!r}"


def generator_state() -> list[torch.Tensor]:
    """The torch generators training draws from: the CPU's, and each GPU's (proposal sampling
    runs on the device)."""
    return [torch.get_rng_state(), *(torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [])]


def set_generator_state(state: list[torch.Tensor]) -> None:
    torch.set_rng_state(state[0])
    if torch.cuda.is_available() and len(state) > 1:
        torch.cuda.set_rng_state_all(state[1:])
