"""Training a detector within a time budget: ``train_detector``, the detector recipe (registered
for ``ModelKind.DETECTOR`` in ``trainer.recipes``).

The learning-rate schedule is warmup-stable-decay: after a short warmup the rate stays
constant until the run decides to end - the planned iterations are done, the loss (or the
hold-out mAP) stopped improving, or the deadline comes near - and then decays linearly to zero
over a final stretch. Unlike a cosine schedule it needs no length fixed in advance, so one
schedule serves a 30-second CPU run that converges early and an hour on a GPU.

Everything random derives from the seed: the network's initial weights, the sample order
(per epoch), each sample's augmentation (per epoch and image) and torchvision's proposal
sampling (the torch generator, saved in checkpoints). A resumed run continues from the
iteration its checkpoint holds, with the same order and augmentations it would have had.
"""
from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from loupe.artifacts import Holdout, HoldoutSource, Preprocessing
from loupe.enums import ModelKind
from loupe.runner.examples import Example
from trainer.budget import DETECTOR_HOURS_PER_IMAGE, check_budget
from trainer.context import CheckpointStore, TrainingContext
from trainer.detection.checkpoint import (
    CHECKPOINT_NAME,
    TrainingState,
    generator_state,
    load,
    run_key,
    save,
    set_generator_state,
)
from trainer.detection.config import DetectorConfig
from trainer.detection.data import DetectionExample, to_examples
from trainer.detection.evaluate import HoldoutSet
from trainer.detection.model import build_detector, freeze_batchnorm, label_offset, new_parameter_names
from trainer.detection.options import DetectorOptions, device_of
from trainer.detection.plan import plan_config, preprocessing_for
from trainer.detection.stream import SampleStream, batches
from trainer.errors import Cancelled, Diverged, NotEnoughBudget
from trainer.recipes import register_recipe
from trainer.split import holdout_split
from trainer.starting_points import (
    DEFAULT_BACKBONE,
    UnknownDetector,
    available_starting_points,
    is_pretrained_detector,
    load_backbone,
    preferred_starting_point,
)

__all__ = ["CHECKPOINT_NAME", "DetectorOptions", "DetectorResult", "DetectorStats", "train_detector"]

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 1.0
GRADIENT_CLIP = 10.0
DIVERGENCE_RETRIES = 2  # each retry restores the last good weights at a tenth of the rate
VERIFY_IMAGES = 6  # training images the export check runs on


@dataclass
class DetectorResult:
    model: nn.Module  # eval mode, on the CPU
    config: DetectorConfig
    preprocessing: Preprocessing
    labels: list[str]
    iterations: int  # in total, over every attempt of the run
    iterations_this_run: int  # done by this call (less than ``iterations`` after a resume)
    stop_reason: str  # "converged" | "max_iterations" | "deadline"
    holdout_map50: float | None  # of the returned weights, on the hold-out images (torch model)
    verify_images: list[DetectionExample]  # what export_detector checks ONNX against torch on
    losses: list[float] = field(default_factory=list)  # mean training loss per check window
    # per check: {"iteration", "loss" (mean since the last check), "holdout_map50" (None without hold-out)}
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    train_images: int = 0
    holdout_images: int = 0
    holdout_metrics: dict | None = None  # modelPerformance of the returned weights on the hold-out
    holdout: Holdout | None = None  # the per-image predictions behind holdout_metrics (holdout.json)

    def export(self, folder: Path) -> None:
        """Write model.onnx, labels.json and preprocessing.json into ``folder``, the ONNX model
        checked against the torch model (raises ExportMismatch)."""
        from trainer.detection.export import export_detector

        export_detector(self, folder)

    def report(self) -> dict:
        """How the detector was made (network, iterations, why it stopped, hold-out history)."""
        return asdict(self.stats)

    def holdout_performance(self) -> dict:
        """modelPerformance on the hold-out images (given, or split off the training images);
        no values when there were too few images to hold any out."""
        return self.holdout_metrics if self.holdout_metrics is not None else {"tagPerformance": {}}

    def holdout_predictions(self) -> Holdout | None:
        """holdout.json: the detections behind ``holdout_performance``, per hold-out image (keyed by
        its COCO file_name, boxes relative to the image); None when no image was held out."""
        return self.holdout

    @property
    def stats(self) -> DetectorStats:
        return DetectorStats(
            architecture=self.config.architecture, backbone=self.config.backbone,
            input_size=self.config.input_size, anchor_sizes=self.config.anchor_sizes,
            aspect_ratios=self.config.aspect_ratios, train_images=self.train_images,
            holdout_images=self.holdout_images, iterations=self.iterations,
            iterations_this_run=self.iterations_this_run, stop_reason=self.stop_reason,
            holdout_map50=self.holdout_map50, seconds=round(self.seconds, 1), history=self.history)


@dataclass
class DetectorStats:
    """How the detector was made, for users and tests (the trainer writes it next to the model)."""

    architecture: str
    backbone: str
    input_size: tuple[int, int]
    anchor_sizes: tuple[tuple[float, ...], ...] | None
    aspect_ratios: tuple[float, ...]
    train_images: int
    holdout_images: int
    iterations: int
    iterations_this_run: int
    stop_reason: str
    holdout_map50: float | None
    seconds: float
    history: list[dict]


def _optimizer(model: nn.Module, config: DetectorConfig, options: DetectorOptions) -> torch.optim.Optimizer:
    new = new_parameter_names(model, config)
    fresh = [p for n, p in model.named_parameters() if p.requires_grad and n in new]
    pretrained = [p for n, p in model.named_parameters() if p.requires_grad and n not in new]
    groups = [{"params": fresh, "lr": options.learning_rate, "base_lr": options.learning_rate}]
    if pretrained:
        lr = options.learning_rate * options.pretrained_lr_factor
        groups.append({"params": pretrained, "lr": lr, "base_lr": lr})
    return torch.optim.AdamW(groups, lr=options.learning_rate, weight_decay=options.weight_decay, foreach=True)


class _Snapshot:
    """The last weights known good, to fall back to when the loss stops being finite."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, iteration: int) -> None:
        self.model = copy.deepcopy(model.state_dict())
        self.optimizer = copy.deepcopy(optimizer.state_dict())
        self.rng = generator_state()
        self.iteration = iteration

    def restore(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
        model.load_state_dict(self.model)
        optimizer.load_state_dict(self.optimizer)
        set_generator_state(self.rng)
        return self.iteration


@register_recipe(ModelKind.DETECTOR, options=DetectorOptions)
def train_detector(examples: list[Example], labels: list[str], *, context: TrainingContext,
                   starting_point: str | None = None, holdout: list[Example] | None = None,
                   options: DetectorOptions | None = None) -> DetectorResult:
    """Object detection: a few-shot friendly detector trained within the budget.

    Trains on ``examples``' ``boxes`` (images without boxes are negatives) until
    ``context.deadline``.

    ``starting_point``: a name of ``trainer.starting_points``; None: a COCO-pretrained detector
    whose weights the image has baked in, else the default ImageNet backbone
    (``preferred_starting_point``). ``holdout``: labelled images not trained on; when given, the
    run keeps the weights with the best mAP@50 on them and converges when that stops improving
    (without, the run holds out a share of its big categories). Raises NotEnoughBudget (before
    training), Cancelled (``context.should_stop()``; a checkpoint is saved first), Diverged,
    ImagesRejected, UnknownDetector, DetectorWeightsUnavailable, ValueError (bad input, naming
    the image and box).
    """
    options = options or DetectorOptions()
    if starting_point is None:
        starting_point = preferred_starting_point(DEFAULT_BACKBONE, gpu=device_of(options).type == "cuda")
        log.info("detector starting point: %s", starting_point)
    threads = torch.get_num_threads()
    if options.threads:
        torch.set_num_threads(options.threads)
    try:
        return _train(examples, labels, context, starting_point, holdout, options)
    finally:
        torch.set_num_threads(threads)


def _train(train: list[Example], labels: list[str], ctx: TrainingContext, backbone: str,
           holdout: list[Example] | None, options: DetectorOptions) -> DetectorResult:
    started = time.monotonic()
    if backbone not in available_starting_points():
        raise UnknownDetector(f"unknown detector starting point {backbone!r}; known: "
                              f"{', '.join(available_starting_points())}")
    if not labels or not all(isinstance(x, str) and x for x in labels):
        raise ValueError(f"labels: expected at least one non-empty category name; got {labels!r}")
    examples = to_examples(train, len(labels))
    if not examples:
        raise ValueError("train: no training images")
    if not any(len(ex.boxes) for ex in examples):
        raise ValueError("train: no image has a box; a detector needs at least one labelled object")
    _check_budget(len(examples), ctx.deadline - started)
    source: HoldoutSource = "given" if holdout is not None else "split"
    if holdout is not None:
        held = to_examples(holdout, len(labels), what="hold-out")
    else:
        # few-shot data cannot spare an image: only big categories give any
        kept, held_out = holdout_split(examples, len(labels), ctx.seed, fraction=options.holdout_fraction,
                                       min_images=options.holdout_min_images, at_least_one=False)
        examples, held = [examples[i] for i in kept], [examples[i] for i in held_out]
    if held:
        return _Run(examples, labels, held, ctx, backbone, options, started, source).run()
    estimate, estimated = _estimate(examples, labels, ctx, backbone, options)
    # after an estimate pass (progress 0-40%), the served model's progress continues from there
    final_ctx = _PartContext(ctx, low=100.0 * ESTIMATE_TIME_SHARE) if estimated else ctx
    result = _Run(examples, labels, [], final_ctx, backbone, options, time.monotonic(), source).run()
    if estimate is None:  # nothing could be held out, or no time for it: measured on the training images
        training = HoldoutSet(examples, result.preprocessing, labels)
        predictions = training.predict(result.model, label_offset(result.model))
        estimate = training.metrics(predictions), training.holdout(predictions, "training")
    result.holdout_metrics, result.holdout = estimate
    result.holdout_images = len(estimate[1].images)
    return result


# The estimate of a run that cannot spare images for good: a model trained on the rest of the images
# (same recipe) is measured on about this share of each category's images (at least one image of each
# category that has two), then the model is trained on every image. The estimate gets at most
# ESTIMATE_TIME_SHARE of the time left, so the final model keeps the larger part of the budget.
ESTIMATE_FRACTION = 0.34
ESTIMATE_TIME_SHARE = 0.4
ESTIMATE_CHECKPOINT_PREFIX = "estimate-"


def _estimate(examples: list[DetectionExample], labels: list[str], ctx: TrainingContext, backbone: str,
              options: DetectorOptions) -> tuple[tuple[dict, Holdout] | None, bool]:
    """(modelPerformance, holdout.json) of a model trained without some of ``examples`` on those
    images (docs/training.md#estimates), None when no category has two images or the time left
    cannot pay for it; and whether an estimate pass ran (its progress took 0-40%)."""
    kept, held_out = holdout_split(examples, len(labels), ctx.seed, fraction=ESTIMATE_FRACTION, min_images=2)
    if not held_out or not any(len(examples[i].boxes) for i in kept):
        return None, False
    now = time.monotonic()
    part = _PartContext(ctx, now + ESTIMATE_TIME_SHARE * (ctx.deadline - now), high=100.0 * ESTIMATE_TIME_SHARE,
                        label="estimate (part of the images): ", prefix=ESTIMATE_CHECKPOINT_PREFIX)
    try:
        result = _Run([examples[i] for i in kept], labels, [], part, backbone, options, now).run()
    except NotEnoughBudget:
        log.info("no time for a detector estimate on held-out images")
        return None, True
    held = HoldoutSet([examples[i] for i in held_out], result.preprocessing, labels)
    predictions = held.predict(result.model, label_offset(result.model))
    return (held.metrics(predictions), held.holdout(predictions, "split")), True


@dataclass
class _PartContext:
    """The run's context for one of its passes: the pass's deadline (``end``, never past the run's,
    which is read live: None is the run's own), its progress mapped into [low, high] of the run's
    (so the run's percent never goes back), and for the estimate pass its own checkpoint names (a
    resumed run finds both passes' checkpoints) and a message prefix."""

    outer: TrainingContext
    end: float | None = None
    low: float = 0.0
    high: float = 100.0
    label: str = ""
    prefix: str = ""

    @property
    def deadline(self) -> float:
        return self.outer.deadline if self.end is None else min(self.end, self.outer.deadline)

    @property
    def seed(self) -> int:
        return self.outer.seed

    @property
    def checkpoints(self) -> CheckpointStore:
        return _PrefixedStore(self.outer.checkpoints, self.prefix) if self.prefix else self.outer.checkpoints

    def progress(self, phase: str, percent: float, message: str = "", eta_seconds: float | None = None) -> None:
        # the estimate pass's own ETA is not the run's: only the last pass passes it on
        eta = eta_seconds if self.high >= 100.0 else None
        self.outer.progress(phase, self.low + (self.high - self.low) * percent / 100.0, self.label + message, eta)

    def should_stop(self) -> bool:
        return self.outer.should_stop()


@dataclass
class _PrefixedStore:
    inner: CheckpointStore
    prefix: str

    def save(self, name: str, data: bytes) -> None:
        self.inner.save(self.prefix + name, data)

    def load(self, name: str) -> bytes | None:
        return self.inner.load(self.prefix + name)


class _Run:
    """One call of train_detector: the planned network, its data, and the training loop."""

    def __init__(self, examples: list[DetectionExample], labels: list[str], held: list[DetectionExample],
                 ctx: TrainingContext, backbone: str, options: DetectorOptions, started: float,
                 source: HoldoutSource = "split") -> None:
        self.ctx, self.examples, self.labels, self.started = ctx, examples, labels, started
        self.holdout_source = source
        self.device = device_of(options)
        self.options = options = options.resolved(self.device)
        ctx.progress("preparing", 0.0, f"planning a detector for {len(examples)} images")
        # an ImageNet backbone is loaded once: planning reads its strides, the network takes it
        loaded = None if is_pretrained_detector(backbone) else load_backbone(backbone)
        self.config = plan_config(examples, len(labels), backbone, options, loaded)
        self.pre = preprocessing_for(self.config, loaded)
        self.held = HoldoutSet(held, self.pre, labels) if held else None
        self.batch_size = options.batch_size
        per_epoch = max(1, math.ceil(len(examples) / self.batch_size))
        self.cap = int(min(options.max_iterations, max(options.min_iterations, options.epochs * per_epoch)))
        self.check_every = options.check_every or max(10, 2 * per_epoch)
        self.held_every = self.held.every(self.check_every * self.batch_size) if self.held is not None else 1
        self.key = run_key(examples, labels, ctx.seed, options)

        torch.manual_seed(ctx.seed)
        resumed = load(ctx, self.key, self.config)
        self.model = build_detector(self.config, pretrained=resumed is None, backbone=loaded).to(self.device)
        self.optimizer = _optimizer(self.model, self.config, options)
        self.state, self.best = TrainingState(), None
        if resumed is not None:
            self.model.load_state_dict(resumed["model"])
            self.optimizer.load_state_dict(resumed["optimizer"])
            set_generator_state(resumed["torch_rng"])
            self.state, self.best = TrainingState(**resumed["state"]), resumed["best"]
            log.info("resuming detector training at iteration %d", self.state.iteration)
        self.offset = label_offset(self.model)
        self.stream = SampleStream(examples, self.pre, ctx.seed, options.augment, (self.cap + 1) * self.batch_size)
        self.first_iteration = self.state.iteration
        self.snapshot = _Snapshot(self.model, self.optimizer, self.state.iteration)
        self.retries = 0
        self.seconds_per_iteration: float | None = None

    def save(self) -> None:
        save(self.ctx, self.key, self.config, self.state, self.model, self.optimizer, self.best)

    def run(self) -> DetectorResult:
        ctx, state = self.ctx, self.state
        last_progress = last_checkpoint = time.monotonic()
        ctx.progress("training", 100.0 * state.iteration / self.cap, "training the detector")
        feed = batches(self.stream, state.iteration, self.batch_size, self.device)
        while True:
            if ctx.should_stop():
                self.save()
                raise Cancelled("detector training was asked to stop")
            stop_reason = self._plan_the_end()
            if stop_reason:
                break
            tick = time.monotonic()
            loss = self._step(*next(feed))
            if loss is None:  # not finite: rolled back to the snapshot
                feed = batches(self.stream, self.state.iteration, self.batch_size, self.device)
                continue
            self._timed(time.monotonic() - tick)
            if state.iteration % self.check_every == 0:
                self._check()
                if state.iteration % (5 * self.check_every) == 0:
                    self.snapshot = _Snapshot(self.model, self.optimizer, state.iteration)
            now = time.monotonic()
            if now - last_progress >= PROGRESS_INTERVAL_SECONDS:
                self._progress(loss)
                last_progress = now
            if now - last_checkpoint >= self.options.checkpoint_every_seconds:
                self.save()
                last_checkpoint = now
        return self._finish(stop_reason)

    def _plan_the_end(self) -> str:
        """Start the final decay when the cap or the deadline comes near; the reason to stop
        now, or ""."""
        state, spi = self.state, self.seconds_per_iteration
        if state.planned is not None and state.iteration >= state.planned:
            return state.decay_reason
        left = self.ctx.deadline - time.monotonic() - self.options.export_reserve_seconds
        if spi is not None:
            if left < spi:
                return "deadline"  # the decay (if any) cannot finish: stop where we are
            if state.decay_start is None and left < (_decay_length(state.iteration, self.options) + 1) * spi:
                state.start_decay(int(left / spi) - 1, "deadline")
        if state.decay_start is None and state.iteration + _decay_length(state.iteration, self.options) >= self.cap:
            state.start_decay(self.cap - state.iteration, "max_iterations")
        return ""

    def _step(self, images: list[torch.Tensor], boxes: list[torch.Tensor], classes: list[torch.Tensor]
              ) -> float | None:
        """One optimisation step; None when the loss was not finite (weights rolled back)."""
        state, options = self.state, self.options
        factor = min(1.0, (state.iteration + 1) / max(1, options.warmup_iterations)) * state.lr_scale
        if state.decay_start is not None:
            factor *= max(0.0, 1.0 - (state.iteration - state.decay_start) / state.decay_length)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        self.model.train()
        freeze_batchnorm(self.model)
        targets = [{"boxes": b, "labels": c + self.offset} for b, c in zip(boxes, classes, strict=True)]
        loss = sum(self.model(images, targets).values())
        if not torch.isfinite(loss):
            self.retries += 1
            if self.retries > DIVERGENCE_RETRIES:
                raise Diverged(f"the detector's training loss became {loss.item()} at iteration {state.iteration} "
                               f"and restarting {DIVERGENCE_RETRIES} times at a lower learning rate did not help")
            log.warning("non-finite loss at iteration %d; back to iteration %d at a tenth of the rate",
                        state.iteration, self.snapshot.iteration)
            state.iteration = self.snapshot.restore(self.model, self.optimizer)
            state.lr_scale *= 0.1
            state.window_sum, state.window_count = 0.0, 0
            return None
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, GRADIENT_CLIP)
        self.optimizer.step()
        state.iteration += 1
        state.window_sum += float(loss.item())
        state.window_count += 1
        return float(loss.item())

    def _timed(self, seconds: float) -> None:
        """Track the time per iteration; after the first few, check the budget against it."""
        if self.state.iteration - self.first_iteration <= 1:
            return  # the first iteration pays one-off costs
        spi = self.seconds_per_iteration
        self.seconds_per_iteration = seconds if spi is None else 0.9 * spi + 0.1 * seconds
        if self.state.iteration == 3 and self.first_iteration == 0:
            now = time.monotonic()
            estimate = (now - self.started) + self.options.min_iterations * self.seconds_per_iteration \
                + self.options.export_reserve_seconds
            # the service's minimum was checked against the whole budget before any pass (the
            # estimate pass and the final one each have only part of it): only the measured time here
            check_budget(images=len(self.examples), available_seconds=self.ctx.deadline - self.started,
                         estimated_seconds=estimate, hours_per_image=0.0)

    def _progress(self, loss: float) -> None:
        state = self.state
        planned = state.planned or self.cap
        spi = self.seconds_per_iteration
        eta = None if spi is None else (planned - state.iteration) * spi
        self.ctx.progress("training", min(99.0, 100.0 * state.iteration / max(1, planned)),
                          f"iteration {state.iteration}/{planned}, loss {loss:.3f}", eta)

    def _check(self, *, final: bool = False) -> None:
        """Close a check window: record its loss (and hold-out mAP), keep the best weights, and
        start the final decay when the run has converged."""
        state = self.state
        entry: dict = {"iteration": state.iteration, "loss": None, "holdout_map50": None}
        if state.window_count:
            state.windows.append(state.window_sum / state.window_count)
            state.window_sum, state.window_count = 0.0, 0
            entry["loss"] = round(state.windows[-1], 4)
        if self.held is not None and (final or len(state.history) % self.held_every == self.held_every - 1):
            score = self.held.map50(self.model, self.offset)
            state.maps.append(score)
            entry["holdout_map50"] = round(score, 4)
            if score > state.best_map:
                state.best_map = score
                self.best = {"model": {k: v.detach().to("cpu", copy=True)
                                       for k, v in self.model.state_dict().items()}}
        state.history.append(entry)
        if not final and state.decay_start is None and _converged(state, self.options):
            state.start_decay(_decay_length(state.iteration, self.options), "converged")

    def _finish(self, stop_reason: str) -> DetectorResult:
        state = self.state
        if self.held is not None and (self.best is None or stop_reason != "deadline"):
            self._check(final=True)
        self.save()
        if self.best is not None:
            self.model.load_state_dict(self.best["model"])
        metrics = holdout = None
        if self.held is not None:  # measured once: the metrics and holdout.json from the same predictions
            predictions = self.held.predict(self.model, self.offset)
            metrics, holdout = self.held.metrics(predictions), self.held.holdout(predictions, self.holdout_source)
        model = self.model.to("cpu").eval()
        holdout_map = state.best_map if self.held is not None else None
        self.ctx.progress("training", 100.0, f"trained {state.iteration} iterations ({stop_reason})")
        log.info("detector: %d iterations (%d in this run), stop: %s, hold-out mAP50 %s", state.iteration,
                 state.iteration - self.first_iteration, stop_reason, holdout_map)
        return DetectorResult(
            model=model, config=self.config, preprocessing=self.pre, labels=list(self.labels),
            iterations=state.iteration, iterations_this_run=state.iteration - self.first_iteration,
            stop_reason=stop_reason, holdout_map50=holdout_map, verify_images=_verify_images(self.examples),
            losses=list(state.windows), history=list(state.history), seconds=time.monotonic() - self.started,
            train_images=len(self.examples), holdout_images=len(self.held or []), holdout_metrics=metrics,
            holdout=holdout)


def _check_budget(images: int, available_seconds: float, estimated_seconds: float = 0.0) -> None:
    """NotEnoughBudget below the service's detector minimum (0.0066667 h per image) or our own
    measured estimate of the shortest useful run, whichever is larger."""
    check_budget(images=images, available_seconds=available_seconds, estimated_seconds=estimated_seconds,
                 hours_per_image=DETECTOR_HOURS_PER_IMAGE)


def _decay_length(iteration: int, options: DetectorOptions) -> int:
    return max(10, int(options.decay_fraction * iteration))


def _verify_images(examples: Sequence[DetectionExample]) -> list[DetectionExample]:
    with_boxes = [ex for ex in examples if len(ex.boxes)]
    return (with_boxes or list(examples))[:VERIFY_IMAGES]


def _converged(state: TrainingState, options: DetectorOptions) -> bool:
    """No improvement over the last ``patience`` checks: of the hold-out mAP@50 by
    ``min_improvement`` points, or else of the window loss by ``min_improvement`` relative."""
    if state.iteration < options.min_iterations:
        return False
    p = options.patience
    if state.maps:
        return len(state.maps) > p and max(state.maps[-p:]) < max(state.maps[:-p]) + options.min_improvement
    return len(state.windows) > p and min(state.windows[-p:]) > min(state.windows[:-p]) * (1 - options.min_improvement)
