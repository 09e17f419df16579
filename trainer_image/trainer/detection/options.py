"""Training options, and the schedule each kind of device affords."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Literal

import torch

from trainer.detection import augment as aug
from trainer.detection.config import Architecture


@dataclass(frozen=True)
class Schedule:
    """How much training the device affords: a CPU run is kept short (minutes), a GPU run
    trains longer and on bigger inputs when the data gives it reason to."""

    batch_size: int
    input_side: tuple[int, int]  # (min, max) long side of the network input
    epochs: int  # the iteration cap is this many passes over the data ...
    min_iterations: int  # ... but at least this many


# 150 iterations, not 100 (nor 60): small sets still improve when 100 end the run (2-shot mean
# mAP@50 67.0 against 60.7, better on each of the three sets, for 1.5x the CPU time;
# benchmarks/detection_quality.py, docs/training.md#detectors). A larger minimum input side
# (384) gained as much at the same cost but also slows every prediction, so it was left out.
CPU_SCHEDULE = Schedule(batch_size=4, input_side=(320, 512), epochs=20, min_iterations=150)
GPU_SCHEDULE = Schedule(batch_size=8, input_side=(512, 800), epochs=300, min_iterations=1000)

# Settings.detector_cpu_max_iterations, forwarded by the job backends: an operator's cap on a CPU
# run's iterations (a slow development machine; the test suite, which checks flows, not quality:
# docs/training.md#detectors). Unset: the schedule above.
CPU_MAX_ITERATIONS_ENV = "LOUPE_DETECTOR_CPU_MAX_ITERATIONS"


def cpu_max_iterations() -> int | None:
    value = os.environ.get(CPU_MAX_ITERATIONS_ENV, "").strip()
    if not value:
        return None
    try:
        cap = int(value)
    except ValueError:
        raise ValueError(f"{CPU_MAX_ITERATIONS_ENV}: expected a whole number of iterations; "
                         f"got {value!r}") from None
    if cap < 1:
        raise ValueError(f"{CPU_MAX_ITERATIONS_ENV}: expected at least 1; got {cap}")
    return cap


@dataclass(frozen=True)
class DetectorOptions:
    """Defaults measured on the few-shot sets (benchmarks/detection_quality.py); None: from the
    device's Schedule."""

    # Faster R-CNN learns from few images far faster than the one-stage heads: after 60 iterations
    # on the sample set, mAP@50 0.94-0.98 against RetinaNet 0.32 and FCOS 0.63 (same backbone, FPN)
    architecture: Architecture = "fasterrcnn"
    device: str | None = None  # "cuda" when available, else "cpu"
    threads: int | None = None  # torch CPU threads while training; None: torch's default
    batch_size: int | None = None
    input_side: tuple[int, int] | None = None
    epochs: int | None = None
    min_iterations: int | None = None
    max_iterations: int = 20000
    learning_rate: float = 1e-3  # AdamW, for the randomly initialised layers
    pretrained_lr_factor: float = 0.1  # the pretrained layers that are trained move slower
    weight_decay: float = 1e-4
    warmup_iterations: int = 10
    decay_fraction: float = 0.2  # the final decay lasts this share of the iterations before it
    check_every: int | None = None  # iterations between convergence checks; None: ~2 epochs, >= 10
    patience: int = 3  # checks without improvement before the run converges
    min_improvement: float = 0.02  # relative loss improvement (or mAP points) that counts
    # ImageNet backbones: stages at this stride and coarser train (32: the last blocks; on the
    # sample set 0.98 mAP@50 against 0.94 for 16, with iterations ~30% faster)
    trainable_from_stride: int = 32
    # "stretch": the whole image resized to the input, as export packages' consumers feed it
    # (docs/exports.md#letterbox-trained-detectors); "letterbox": aspect kept, padded
    resize: Literal["stretch", "letterbox"] = "letterbox"
    fpn_channels: int = 64  # 128 cost ~30% more time per iteration on the CPU
    # without hold-out images, this share of each category's images is held out to measure the
    # run (and pick its best weights), but only from categories with at least holdout_min_images
    holdout_fraction: float = 0.2
    holdout_min_images: int = 20
    checkpoint_every_seconds: float = 300.0
    export_reserve_seconds: float = 10.0  # kept before the deadline for the ONNX export and its check
    augment: aug.AugmentConfig = field(default_factory=aug.AugmentConfig)

    def resolved(self, device: torch.device) -> DetectorOptions:
        """These options with every None taken from the device's schedule."""
        schedule = GPU_SCHEDULE if device.type == "cuda" else CPU_SCHEDULE
        min_iterations = self.min_iterations or schedule.min_iterations
        max_iterations = self.max_iterations
        cap = cpu_max_iterations() if device.type == "cpu" else None
        if cap is not None:
            max_iterations, min_iterations = min(max_iterations, cap), min(min_iterations, cap)
        return replace(self, device=str(device),
                       batch_size=self.batch_size or schedule.batch_size,
                       input_side=self.input_side or schedule.input_side,
                       epochs=self.epochs or schedule.epochs,
                       min_iterations=min_iterations, max_iterations=max_iterations)


def device_of(options: DetectorOptions) -> torch.device:
    if options.device:
        return torch.device(options.device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
