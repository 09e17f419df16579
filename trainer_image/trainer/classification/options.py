"""The classifier recipe's options; the defaults are the measured recipe."""

from __future__ import annotations

from dataclasses import dataclass, field

from trainer.classification.finetune import LossHook
from trainer.classification.head import DEFAULT_C
from trainer.split import HOLDOUT_FRACTION


@dataclass(frozen=True)
class TrainOptions:
    """Recipe knobs; the defaults are the measured recipe."""

    views: int | None = None  # augmented views per image incl. the original (None: by dataset size)
    max_views: int = 10
    # image-views the frozen backbone may process by default (keeps CPU runs short)
    max_image_views_cpu: int = 3000
    max_image_views_gpu: int = 30000
    finetune: bool = True
    epochs: int = 12
    batch_size: int = 16
    lr: float = 3e-4
    head_lr: float = 3e-4
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    head_c: float = DEFAULT_C
    # the linear head (a name in trainer.classification.selection.CANDIDATES); None: chosen by cross-validation
    head: str | None = None
    holdout_fraction: float = HOLDOUT_FRACTION
    retrain_on_all: bool = True
    export_reserve_seconds: float = 15.0
    checkpoint_every_seconds: float = 30.0
    max_cache_bytes: int = 3 * 2**29  # 1.5 GiB of cached features
    extraction_batch: int = 32
    device: str | None = None  # None: cuda when available
    # CPU threads; None: $LOUPE_TRAINER_THREADS, else every CPU this process may use
    threads: int | None = None
    loss_hook: LossHook | None = field(default=None, compare=False)

    def recipe(self) -> dict:
        """What makes two runs' checkpoints interchangeable."""
        keep = (
            "views",
            "max_views",
            "finetune",
            "epochs",
            "batch_size",
            "lr",
            "head_lr",
            "weight_decay",
            "label_smoothing",
            "head_c",
            "head",
            "holdout_fraction",
            "retrain_on_all",
        )
        return {k: getattr(self, k) for k in keep}
