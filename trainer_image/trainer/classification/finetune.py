"""Fine-tuning of the backbone's tail and the linear head on cached boundary features.

One-cycle learning rate (warm-up, cosine decay), AdamW, label smoothing, BatchNorm statistics
frozen. Each epoch draws one random augmented view per image. The batch order of epoch e is a
pure function of (seed, pass, e), so a run resumed at any step continues exactly where the
interrupted one was. A non-finite loss rolls back to the last good state with a smaller
learning rate; after MAX_RECOVERIES the run is declared diverged.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from trainer.classification.head import head_loss
from trainer.classification.model import ClassifierNet
from trainer.errors import Cancelled, Diverged

MAX_RECOVERIES = 2
RECOVERY_LR_FACTOR = 0.3

# (loss, epoch, step) -> loss; a seam for tests that must make a real run see a NaN loss
LossHook = Callable[[torch.Tensor, int, int], torch.Tensor]


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int
    batch_size: int
    lr: float
    head_lr: float
    weight_decay: float
    label_smoothing: float
    warmup: float = 0.1


@dataclass
class FinetuneState:
    """Where a fine-tuning pass is: enough to continue it exactly (checkpoints, and the last good
    state a non-finite loss rolls back to)."""

    epoch: int
    step: int  # within the epoch
    lr_scale: float
    recoveries: int
    weights: dict[str, torch.Tensor]  # the tail stages and the head
    optimizer: dict  # the optimizer's state_dict


@dataclass
class FinetuneOutcome:
    epochs_run: float  # in this call (fractions for partial epochs)
    completed: bool  # all planned epochs done (False: stopped by its deadline)
    recoveries: int


def lr_factor(step: int, total: int, warmup: float) -> float:
    warm = max(1, round(warmup * total))
    if step < warm:
        return 0.1 + 0.9 * step / warm
    progress = (step - warm) / max(1, total - warm)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _epoch_generator(seed: int, pass_name: str, epoch: int) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}/{pass_name}/{epoch}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "big") & ((1 << 63) - 1))


class Finetuner:
    def __init__(
        self,
        model: ClassifierNet,
        maps: torch.Tensor,
        targets: torch.Tensor,
        indices: list[int],
        config: FinetuneConfig,
        *,
        device: torch.device,
        seed: int,
        pass_name: str,
        loss_hook: LossHook | None = None,
    ) -> None:
        self.model = model
        self.maps = maps  # [N, V, C, h, w] float16 on the CPU
        self.targets = targets
        self.indices = torch.as_tensor(indices, dtype=torch.long)
        self.config = config
        self.device = device
        self.seed = seed
        self.pass_name = pass_name
        self.loss_hook = loss_hook
        self.trainable = nn.ModuleDict(
            {"tail": nn.ModuleList(model.stages[model.tail_start :]), "head": model.head}
        )
        groups = [
            {"params": model.tail_parameters(), "lr": config.lr, "base_lr": config.lr},
            {"params": list(model.head.parameters()), "lr": config.head_lr, "base_lr": config.head_lr},
        ]
        self.optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
        self.steps_per_epoch = math.ceil(len(indices) / config.batch_size)
        self.total_steps = config.epochs * self.steps_per_epoch
        self.epoch = 0
        self.step = 0  # within the epoch
        self.lr_scale = 1.0
        self.recoveries = 0

    # --- state (checkpoints) -------------------------------------------------------------

    def state(self) -> FinetuneState:
        return FinetuneState(
            epoch=self.epoch,
            step=self.step,
            lr_scale=self.lr_scale,
            recoveries=self.recoveries,
            weights={k: v.detach().cpu().clone() for k, v in self.trainable.state_dict().items()},
            optimizer=copy.deepcopy(self.optimizer.state_dict()),
        )

    def load_state(self, state: FinetuneState) -> None:
        self.trainable.load_state_dict(state.weights)
        self.optimizer.load_state_dict(state.optimizer)
        self.epoch, self.step = int(state.epoch), int(state.step)
        self.lr_scale, self.recoveries = float(state.lr_scale), int(state.recoveries)

    @property
    def global_step(self) -> int:
        return self.epoch * self.steps_per_epoch + self.step

    # --- training -------------------------------------------------------------------------

    def _batch(self, epoch: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = _epoch_generator(self.seed, self.pass_name, epoch)
        order = self.indices[torch.randperm(len(self.indices), generator=generator)]
        views = torch.randint(0, self.maps.shape[1], (len(order),), generator=generator)
        lo = step * self.config.batch_size
        rows, cols = order[lo : lo + self.config.batch_size], views[lo : lo + self.config.batch_size]
        x = self.maps[rows, cols].to(self.device, torch.float32)
        return x, self.targets[rows].to(self.device)

    def run(
        self,
        *,
        deadline: float,
        should_stop: Callable[[], bool],
        on_step: Callable[[int], None],
        save: Callable[[FinetuneState], None],
        checkpoint_every: float,
    ) -> FinetuneOutcome:
        started_epoch = self.epoch + self.step / self.steps_per_epoch
        good = self.state()
        last_save = time.monotonic()
        multilabel = self.model.multilabel
        smoothing = 0.0 if multilabel else self.config.label_smoothing
        self.model.train_tail()
        try:
            while self.epoch < self.config.epochs:
                if should_stop():
                    save(self.state())
                    raise Cancelled("cancelled during fine-tuning")
                if time.monotonic() > deadline:
                    return FinetuneOutcome(
                        self.epoch + self.step / self.steps_per_epoch - started_epoch, False, self.recoveries
                    )
                factor = lr_factor(self.global_step, self.total_steps, self.config.warmup) * self.lr_scale
                for group in self.optimizer.param_groups:
                    group["lr"] = group["base_lr"] * factor
                x, y = self._batch(self.epoch, self.step)
                loss = head_loss(self.model.logits_from_boundary(x), y, multilabel, smoothing)
                if self.loss_hook is not None:
                    loss = self.loss_hook(loss, self.epoch, self.step)
                if not torch.isfinite(loss):
                    self._recover(good, loss)
                    continue
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.step += 1
                if self.step == self.steps_per_epoch:
                    self.epoch, self.step = self.epoch + 1, 0
                    good = self.state()
                on_step(self.global_step)
                if time.monotonic() - last_save >= checkpoint_every:
                    save(self.state())
                    last_save = time.monotonic()
        finally:
            self.model.eval()
        return FinetuneOutcome(self.epoch - started_epoch, True, self.recoveries)

    def _recover(self, good: FinetuneState, loss: torch.Tensor) -> None:
        if self.recoveries >= MAX_RECOVERIES:
            raise Diverged(
                f"the training loss became {loss.item()} at epoch {self.epoch + 1}, step {self.step + 1}, "
                f"and stayed non-finite after {MAX_RECOVERIES} restarts with a lower learning rate"
            )
        recoveries, lr_scale = self.recoveries + 1, self.lr_scale * RECOVERY_LR_FACTOR
        self.load_state(good)
        self.recoveries, self.lr_scale = recoveries, lr_scale
