"""train_classifier: few-shot image classification within a time budget.

The recipe (chosen by measurement, see benchmarks/classification_quality.py):
1. every training image and up to 9 augmented views of it (random crops, mirror, colour) go
   once through the frozen part of a pretrained backbone; the outputs are cached (float16);
2. a linear head (L2-regularised logistic regression, L-BFGS) is fitted on the embeddings of
   all cached views;
3. the backbone's tail (the 1/32-scale blocks) and the head are fine-tuned from there on the
   cached views for a fixed number of epochs (fewer when the budget is short).
Which of 2 and 3 is kept is decided on held-out images: fine-tuning gains a lot where the
images are far from ImageNet (traffic signs: +9 to +12 points) and loses a little where the
linear head is already as good as the features allow (CIFAR-10).

Held-out split: a stratified ~20% of the training images (deterministic from the seed, never
a category's last image) is held out; the models trained on the rest are compared on it and
its predictions are the reported measurement unless a test set is given. The final model is
then retrained the same way on all images (with 2-5 images per category every image counts);
if the budget ends during that retraining, the split pass's model is kept.

The budget is a ceiling, not a target: a tiny dataset finishes in seconds.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from loupe.artifacts import Preprocessing
from loupe.preprocess import to_input
from trainer.backbones import DEFAULT_BACKBONE, load_backbone
from trainer.budget import check_budget
from trainer.classification.checkpoint import RunCheckpoints
from trainer.classification.data import (
    HOLDOUT_FRACTION,
    LabelledImage,
    fingerprint,
    holdout_split,
    load_image,
    targets_array,
    validate_examples,
)
from trainer.classification.features import ViewExtractor, draft_size, extract
from trainer.classification.finetune import FinetuneConfig, Finetuner, LossHook
from trainer.classification.head import DEFAULT_C, fit_linear_head
from trainer.classification.model import ClassifierNet, embed
from trainer.classification.progress import ProgressReporter
from trainer.context import TrainingContext
from trainer.errors import Cancelled

log = logging.getLogger(__name__)

RECIPE_VERSION = "classifier-1"
MIN_FINETUNE_EPOCHS = 3


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
    label_smoothing: float = 0.1
    head_c: float = DEFAULT_C
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
            "holdout_fraction",
            "retrain_on_all",
        )
        return {k: getattr(self, k) for k in keep}


@dataclass
class HoldoutPredictions:
    images: list[Path]
    scores: np.ndarray  # [N, C] probabilities
    targets: np.ndarray  # [N] class indices (multiclass) or [N, C] 0/1 (multilabel)
    source: Literal["split", "given"]


@dataclass
class TrainingStats:
    images: int
    holdout_images: int
    holdout_source: Literal["split", "given", "none"]
    backbone: str
    device: str
    views: int
    finetune_epochs_planned: int
    finetune_epochs_run: float = 0.0  # in this process, all passes
    feature_extractions: int = 0  # image-views through the frozen backbone in this process
    views_restored: int = 0  # views read back from checkpoints
    passes_restored: list[str] = field(default_factory=list)
    passes: list[str] = field(default_factory=list)
    final_model: str = ""  # which pass's weights the result holds
    method: str = ""  # "finetune" or "linear" (the linear head on the frozen backbone)
    # held-out (accuracy, -log loss) of each method in the split pass
    selection: dict[str, tuple[float, float]] = field(default_factory=dict)
    budget_limited: bool = False  # views or epochs were cut to fit the budget
    recoveries: int = 0  # non-finite losses recovered from
    checkpoint_saves: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ClassifierResult:
    model: ClassifierNet  # eval mode
    preprocessing: Preprocessing
    labels: list[str]
    multilabel: bool
    holdout: HoldoutPredictions | None
    stats: TrainingStats
    # real network inputs (to_input of training images) for the export check, [k, 3, H, W]
    check_inputs: np.ndarray


@dataclass(frozen=True)
class _Timing:
    frozen: float  # seconds per image-view through the frozen part
    tail_step: float  # seconds per image for a fine-tuning step (forward + backward)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


THREADS_ENV = "LOUPE_TRAINER_THREADS"


def _cpu_threads(requested: int | None) -> int:
    if requested:
        return requested
    if os.environ.get(THREADS_ENV, "").strip().isdigit():
        return max(1, int(os.environ[THREADS_ENV]))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _probe(model: ClassifierNet, pre: Preprocessing, device: torch.device, finetune: bool) -> _Timing:
    """Measure this machine: a few dummy images through the frozen part and a tail step."""
    height, width = pre.size
    with torch.inference_mode():
        model.frozen(torch.zeros(1, 3, height, width, device=device))
        x = torch.zeros(4, 3, height, width, device=device)
        start = time.perf_counter()
        boundary = model.frozen(x)
        _sync(device)
        frozen = (time.perf_counter() - start) / 4
    tail = 0.0
    if finetune:
        trial = copy.deepcopy(model)
        trial.train_tail()
        b = boundary.clone()  # a normal tensor: inference tensors cannot enter autograd
        start = time.perf_counter()
        trial.logits_from_boundary(b).sum().backward()
        _sync(device)
        tail = (time.perf_counter() - start) / 4
    return _Timing(frozen=frozen, tail_step=tail)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _compat_key(
    train: Sequence[LabelledImage],
    holdout: Sequence[LabelledImage] | None,
    labels: Sequence[str],
    multilabel: bool,
    seed: int,
    backbone: str,
    opts: TrainOptions,
    linear_only: bool,
) -> str:
    payload = {
        "recipe": RECIPE_VERSION,
        "options": opts.recipe(),
        "labels": list(labels),
        "multilabel": multilabel,
        "seed": seed,
        "backbone": backbone,
        "linear_only": linear_only,
        "train": fingerprint(train, labels),
        "holdout": fingerprint(holdout, labels) if holdout is not None else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def train_classifier(
    train: list[LabelledImage],
    labels: list[str],
    *,
    multilabel: bool,
    ctx: TrainingContext,
    backbone: str = DEFAULT_BACKBONE,
    holdout: list[LabelledImage] | None = None,
    options: TrainOptions | None = None,
) -> ClassifierResult:
    """Train a multiclass (softmax) or multilabel (sigmoid) classifier on local images.

    Raises NotEnoughBudget (before any training work), Cancelled, Diverged, ImagesRejected,
    ValueError (bad input) or UnknownBackbone/BackboneUnavailable.
    """
    opts = options or TrainOptions()
    t_start = time.monotonic()
    num_classes = len(labels)
    validate_examples(train, num_classes, multilabel=multilabel)
    if holdout is not None:
        validate_examples(holdout, num_classes, multilabel=multilabel, what="hold-out")
    if ctx.should_stop():
        raise Cancelled("cancelled before training started")
    _seed_everything(ctx.seed)
    device = torch.device(opts.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu":
        torch.set_num_threads(_cpu_threads(opts.threads))
    progress = ProgressReporter(ctx)
    progress.report("preparing", 0.0, f"loading backbone {backbone}", force=True)

    net = load_backbone(backbone)
    task = "multilabel" if multilabel else "multiclass"
    pre = net.preprocessing(task)
    n = len(train)
    # fine-tuning needs the boundary maps cached; when one view of them would not fit, the
    # whole backbone is frozen and only pooled features are cached
    linear_only = (
        not opts.finetune or _boundary_bytes(net.stages, net.tail_start, pre) * n > opts.max_cache_bytes
    )
    tail_start = len(net.stages) if linear_only else net.tail_start
    bytes_per_view = net.feature_dim * 2 if linear_only else _boundary_bytes(net.stages, tail_start, pre)
    model = (
        ClassifierNet(net.stages, tail_start, nn.Linear(net.feature_dim, num_classes), multilabel=multilabel)
        .to(device)
        .eval()
    )
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for parameter in [*model.tail_parameters(), *model.head.parameters()]:
        parameter.requires_grad_(True)
    pristine = {k: v.clone() for k, v in model.state_dict().items()}

    # the split decides between fine-tuning and the linear head, so it is carved even when a
    # test set is given (which is then what the result's predictions are measured on)
    train_idx, hold_idx = holdout_split(train, num_classes, ctx.seed, opts.holdout_fraction)
    n_eval = len(hold_idx) + (len(holdout) if holdout is not None else 0)

    # --- budget ---------------------------------------------------------------------------
    timing = _probe(model, pre, device, not linear_only)
    now = time.monotonic()
    available = ctx.deadline - now
    # the shortest useful run: one view of every image, a linear head, evaluation and export
    shortest = opts.export_reserve_seconds + (n + n_eval) * timing.frozen * 1.5 + 2.0
    check_budget(images=n, available_seconds=available, estimated_seconds=shortest)
    eval_reserve = n_eval * timing.frozen * 1.5
    training_deadline = ctx.deadline - opts.export_reserve_seconds - eval_reserve

    views, bytes_limited = _plan_views(n, device, opts, bytes_per_view)
    time_views = int(0.5 * (training_deadline - now) / max(1e-6, n * timing.frozen * 1.3))
    budget_limited = time_views < views
    views = max(1, min(views, time_views))

    key = _compat_key(train, holdout, labels, multilabel, ctx.seed, backbone, opts, linear_only)
    checkpoints = RunCheckpoints(ctx.checkpoints, key)
    state = checkpoints.load_state() or {}
    if state:
        views = int(state["views"])
        log.info("resuming a checkpointed run (%s)", ", ".join(sorted(state.get("passes", {}))) or "features")
    else:
        state = {"views": views, "passes": {}}
        checkpoints.save_state(state)
    stats = TrainingStats(
        images=n,
        holdout_images=len(holdout) if holdout is not None else len(hold_idx),
        holdout_source="given" if holdout is not None else ("split" if hold_idx else "none"),
        backbone=backbone,
        device=str(device),
        views=views,
        finetune_epochs_planned=0,
        budget_limited=budget_limited or bytes_limited,
    )
    stats.seconds["preparing"] = time.monotonic() - t_start

    # --- features -------------------------------------------------------------------------
    t_phase = time.monotonic()
    extractor = ViewExtractor(
        model,
        pre,
        device,
        seed=ctx.seed,
        batch_size=opts.extraction_batch,
        should_stop=ctx.should_stop,
        pooled=linear_only,
    )
    planned = n * views
    done = [0]

    def on_batch(count: int) -> None:
        done[0] += count
        rate = (time.monotonic() - t_phase) / max(1, done[0])
        progress.report(
            "extracting features",
            5.0 + 45.0 * done[0] / planned,
            f"{done[0]}/{planned} image views",
            eta=(planned - done[0]) * rate + 10.0,
        )

    soft_deadline = now + 0.5 * (training_deadline - now)
    maps, report = extract(
        extractor,
        train,
        kind="train",
        views=views,
        checkpoints=checkpoints,
        soft_deadline=soft_deadline,
        on_batch=on_batch,
    )
    stats.views = report.views_done
    stats.budget_limited |= report.views_done < views
    stats.feature_extractions = extractor.forwarded
    stats.views_restored = report.restored
    stats.seconds["extracting features"] = time.monotonic() - t_phase
    targets = torch.from_numpy(targets_array(train, num_classes, multilabel))

    # --- training passes ------------------------------------------------------------------
    t_phase = time.monotonic()
    everything = list(range(n))
    if hold_idx:
        passes = [("split", train_idx)] + ([("final", everything)] if opts.retrain_on_all else [])
    else:
        passes = [("final", everything)]
    epochs = 0
    if not linear_only:
        per_epoch = sum(len(idx) for _, idx in passes) * timing.tail_step * 1.3
        fit = int((training_deadline - time.monotonic()) / max(1e-6, per_epoch))
        epochs = state.get("epochs", min(opts.epochs, fit))
        stats.budget_limited |= epochs < opts.epochs
        if epochs < MIN_FINETUNE_EPOCHS:
            epochs = 0
    state["epochs"] = epochs
    stats.finetune_epochs_planned = epochs
    # fine-tuning is kept only where it beats the linear head on the held-out images
    method = "finetune" if epochs else "linear"
    steps_per_pass = {name: -(-len(idx) // opts.batch_size) * epochs for name, idx in passes}
    total_steps = max(1, sum(steps_per_pass.values()))

    split_scores: np.ndarray | None = None
    final_weights: dict | None = None
    steps_before = 0
    for pass_number, (name, idx) in enumerate(passes):
        saved = state["passes"].get(name)
        if saved is not None and saved.get("done"):
            stats.passes_restored.append(name)
            stats.final_model = name
            final_weights = saved["weights"]
            if name == "split":
                split_scores = saved["holdout_scores"].numpy()
                method = saved["method"]
                stats.selection = dict(saved["selection"])
            steps_before += steps_per_pass[name]
            continue
        model.load_state_dict(pristine)
        if saved is None:
            # the linear head: deterministic and quick, recomputed rather than checkpointed
            with torch.no_grad():
                emb = _embeddings(
                    model,
                    maps,
                    idx,
                    device,
                    opts.extraction_batch,
                    tick=lambda name=name, at=steps_before: progress.report(
                        "training", 50.0 + 45.0 * at / total_steps, f"linear head ({name} pass): embeddings"
                    ),
                )
            progress.report(
                "training", 50.0 + 45.0 * steps_before / total_steps, f"linear head ({name} pass)"
            )
            flat_targets = targets[idx].repeat(maps.shape[1], *([1] * (targets.dim() - 1)))
            head = fit_linear_head(
                emb, flat_targets.to(device), num_classes, multilabel=multilabel, c=opts.head_c
            )
            model.head.load_state_dict(head.state_dict())
            linear_head = {k: v.detach().cpu().clone() for k, v in model.head.state_dict().items()}
        else:
            linear_head = saved["linear_head"]
        if name == "split":
            model.head.load_state_dict(linear_head)
            stats.selection["linear"] = _selection_score(model, maps, hold_idx, targets, device)
        remaining_passes = len(passes) - pass_number
        pass_deadline = time.monotonic() + (training_deadline - time.monotonic()) / remaining_passes
        completed = True
        if epochs and method == "finetune":
            finetuner = Finetuner(
                model,
                maps,
                targets,
                idx,
                FinetuneConfig(
                    epochs=epochs,
                    batch_size=opts.batch_size,
                    lr=opts.lr,
                    head_lr=opts.head_lr,
                    weight_decay=opts.weight_decay,
                    label_smoothing=opts.label_smoothing,
                ),
                device=device,
                seed=ctx.seed,
                pass_name=name,
                loss_hook=opts.loss_hook,
            )
            if saved is not None:
                finetuner.load_state(saved["finetune"])
                stats.passes_restored.append(f"{name}@epoch{finetuner.epoch}+{finetuner.step}")

            def on_step(
                step: int,
                offset: int = steps_before,
                name: str = name,
                per_epoch: int = finetuner.steps_per_epoch,
            ) -> None:
                epoch = min(epochs, step // per_epoch + 1)
                progress.report(
                    "training",
                    50.0 + 45.0 * (offset + step) / total_steps,
                    f"fine-tuning ({name} pass) epoch {epoch}/{epochs}",
                    eta=(total_steps - offset - step) * timing.tail_step * opts.batch_size + 10.0,
                )

            def save(ft_state: dict, name: str = name, linear_head: dict = linear_head) -> None:
                state["passes"][name] = {"done": False, "finetune": ft_state, "linear_head": linear_head}
                checkpoints.save_state(state)

            outcome = finetuner.run(
                deadline=pass_deadline,
                should_stop=ctx.should_stop,
                on_step=on_step,
                save=save,
                checkpoint_every=opts.checkpoint_every_seconds,
            )
            stats.finetune_epochs_run += outcome.epochs_run
            stats.recoveries = max(stats.recoveries, outcome.recoveries)
            completed = outcome.completed
            stats.budget_limited |= not completed
            if name == "split":
                stats.selection["finetune"] = _selection_score(model, maps, hold_idx, targets, device)
                if stats.selection["finetune"] < stats.selection["linear"]:
                    method = "linear"
                    model.load_state_dict(pristine)
                    model.head.load_state_dict(linear_head)
        steps_before += steps_per_pass[name]
        model.eval()
        weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        record: dict = {"done": True, "weights": _trainable(weights, model)}
        if name == "split":
            progress.report("evaluating", 95.0, f"{len(hold_idx)} held-out images", force=True)
            split_scores = _scores(
                model,
                [train[i] for i in hold_idx],
                pre,
                device,
                opts.extraction_batch,
                tick=lambda done: progress.report("evaluating", 95.0, f"{done}/{len(hold_idx)} images"),
            )
            record.update(
                holdout_scores=torch.from_numpy(split_scores), method=method, selection=stats.selection
            )
        if name == "final" and not completed and final_weights is not None:
            log.info("the budget ended while retraining on all images; keeping the hold-out pass's model")
            break
        final_weights = record["weights"]
        stats.final_model = name
        state["passes"][name] = record
        checkpoints.save_state(state)
        stats.passes.append(name)
    stats.method = method
    model.load_state_dict(pristine)
    model.load_state_dict(final_weights, strict=False)
    model.eval()
    stats.seconds["training"] = time.monotonic() - t_phase

    # --- evaluation -----------------------------------------------------------------------
    t_phase = time.monotonic()
    result_holdout: HoldoutPredictions | None = None
    if holdout is not None and holdout:
        progress.report("evaluating", 96.0, f"{len(holdout)} hold-out images", force=True)
        scores = _scores(
            model,
            holdout,
            pre,
            device,
            opts.extraction_batch,
            tick=lambda done: progress.report("evaluating", 96.0, f"{done}/{len(holdout)} images"),
        )
        result_holdout = HoldoutPredictions(
            [Path(e.path) for e in holdout], scores, targets_array(holdout, num_classes, multilabel), "given"
        )
    elif hold_idx and split_scores is not None:
        held = [train[i] for i in hold_idx]
        result_holdout = HoldoutPredictions(
            [Path(e.path) for e in held], split_scores, targets_array(held, num_classes, multilabel), "split"
        )
    stats.seconds["evaluating"] = time.monotonic() - t_phase
    stats.checkpoint_saves = checkpoints.saves
    check_inputs = np.stack(
        [to_input(load_image(train[i].path, draft_size(pre)), pre)[0] for i in range(min(4, n))]
    )
    progress.report("training", 97.0, "training finished", force=True)
    return ClassifierResult(
        model=model.to("cpu").eval(),
        preprocessing=pre,
        labels=list(labels),
        multilabel=multilabel,
        holdout=result_holdout,
        stats=stats,
        check_inputs=check_inputs,
    )


@torch.no_grad()
def _selection_score(
    model: ClassifierNet, maps: torch.Tensor, hold_idx: list[int], targets: torch.Tensor, device: torch.device
) -> tuple[float, float]:
    """(accuracy, -mean log loss) on the held-out images' cached original view: ordered
    tuples, so accuracy decides and the log loss breaks ties. Multilabel accuracy is per label."""
    model.eval()
    rows = torch.as_tensor(hold_idx, dtype=torch.long)
    logits = model.logits_from_boundary(maps[rows, 0].to(device, torch.float32)).cpu()
    truth = targets[rows]
    if model.multilabel:
        accuracy = ((logits > 0).float() == truth).float().mean()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, truth)
    else:
        accuracy = (logits.argmax(1) == truth).float().mean()
        loss = torch.nn.functional.cross_entropy(logits, truth)
    return round(float(accuracy), 6), round(-float(loss), 6)


def _trainable(weights: dict[str, torch.Tensor], model: ClassifierNet) -> dict[str, torch.Tensor]:
    """The entries of a state dict that training can change (tail stages and head)."""
    prefixes = tuple(f"stages.{i}." for i in range(model.tail_start, len(model.stages))) + ("head.",)
    return {k: v for k, v in weights.items() if k.startswith(prefixes)}


def _boundary_bytes(stages: nn.ModuleList, tail_start: int, pre: Preprocessing) -> int:
    """float16 bytes of one image's cached boundary output."""
    with torch.inference_mode():
        x = torch.zeros(1, 3, *pre.size)
        for stage in stages[:tail_start]:
            x = stage(x)
    return int(x.numel()) * 2


def _plan_views(n: int, device: torch.device, opts: TrainOptions, bytes_per_view: int) -> tuple[int, bool]:
    """Views per image, from the dataset size and memory only (so runs are reproducible)."""
    if opts.views is not None:
        views = opts.views
    else:
        cap = opts.max_image_views_gpu if device.type == "cuda" else opts.max_image_views_cpu
        views = max(1, min(opts.max_views, cap // max(1, n)))
    memory = max(1, opts.max_cache_bytes // max(1, n * bytes_per_view))
    return max(1, min(views, memory)), memory < views


def _embeddings(
    model: ClassifierNet,
    maps: torch.Tensor,
    idx: list[int],
    device: torch.device,
    batch: int,
    tick: Callable[[], None],
) -> torch.Tensor:
    """Embeddings of every cached view of the given images, view-major: [V * len(idx), D]."""
    out = []
    for view in range(maps.shape[1]):
        for lo in range(0, len(idx), batch):
            rows = torch.as_tensor(idx[lo : lo + batch])
            out.append(model.embedding(maps[rows, view].to(device, torch.float32)))
            tick()
    return torch.cat(out)


@torch.inference_mode()
def _scores(
    model: ClassifierNet,
    examples: Sequence[LabelledImage],
    pre: Preprocessing,
    device: torch.device,
    batch: int,
    tick: Callable[[int], None] = lambda done: None,
) -> np.ndarray:
    """Probabilities from the full network in float32 on exactly the inputs prediction uses."""
    out = []
    for lo in range(0, len(examples), batch):
        inputs = np.stack(
            [to_input(load_image(e.path, draft_size(pre)), pre)[0] for e in examples[lo : lo + batch]]
        )
        out.append(model(torch.from_numpy(inputs).to(device)).float().cpu().numpy())
        tick(lo + len(inputs))
    return np.concatenate(out) if out else np.zeros((0, model.head.out_features), dtype=np.float32)


__all__ = [
    "ClassifierResult",
    "HoldoutPredictions",
    "TrainOptions",
    "TrainingStats",
    "embed",
    "train_classifier",
]
