"""The linear head chosen by cross-validation on the cached embeddings, and the temperature that
calibrates the model's probabilities (docs/training.md#classifiers).

With 2-10 images per category a single hold-out split cannot tell candidates apart (at 2 shots it
holds one image per category out of a model trained on one). Refitting a linear head costs
milliseconds on cached embeddings, so every candidate is scored on every image: each image is
predicted by the head of the folds without it, all of its augmented views left out with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from trainer.classification.head import fit_linear_head
from trainer.classification.model import normalise

MAX_FOLDS = 10
# a later candidate replaces the one before it only when right out of fold on this share more of
# the images, and on at least this many more: at 2-5 shots the folds' heads are trained on 1-4
# images per category, so small differences rank candidates no better than chance (measured on
# CIFAR-10: the plain probe was best on the test set at 2, 5 and 10 shots while a head on
# augmented views led out of fold by 1-4 images)
MARGIN = 0.05
MARGIN_IMAGES = 2
# temperature: searched on log T in this range, with a weak prior at T = 1, PRIOR_WEIGHT * (log T)^2,
# so a handful of images cannot push T to an extreme. Measured over CIFAR-10, GTSRB, hemlock/cherry
# and the sample at 2/5/10 shots (4 draws each, test-set ECE): weight 1 gave a mean ECE of 0.076,
# 0.25 gave 0.065 (better on 9 of 12 rows, equal on 2), 0 gave 0.066 with T at the grid's edge on separable data
LOG_T_RANGE = (-3.0, 3.0)
LOG_T_STEPS = 241
PRIOR_WEIGHT = 0.25
# ... plus this much per image when the logits come from the fine-tuned split pass: that model
# is not the one served (the final pass retrains on every image), so its 1-4 held-out images per
# category say less about the served model's temperature. Measured with fine-tuning kept
# (CIFAR-10 2/5/10 shots, GTSRB 2, the sample 2; test-set ECE): 0.25 per image gave a mean ECE
# of 0.103 where the plain prior gave 0.129 (better on 3 of 5 rows, the sample at 2 shots worse)
SPLIT_PRIOR_PER_IMAGE = 0.25


@dataclass(frozen=True)
class HeadCandidate:
    """A linear head on frozen features."""

    name: str
    power: bool  # signed square root of the pooled features before L2 normalisation
    all_views: bool  # fitted on every cached view of each image (else its original view only)


# the plain linear probe first: on a tie it is kept, so nothing is chosen over it without evidence
CANDIDATES: tuple[HeadCandidate, ...] = (
    HeadCandidate("probe", power=False, all_views=False),
    HeadCandidate("probe-views", power=False, all_views=True),
    HeadCandidate("power-views", power=True, all_views=True),
)


@dataclass
class Selection:
    candidate: HeadCandidate
    scored: np.ndarray  # indices of the images every candidate was scored on (their category has 2+ images)
    folds: np.ndarray  # fold of each scored image
    logits: torch.Tensor  # [len(scored), C] out-of-fold logits of the chosen candidate (original view)
    table: dict[str, tuple[float, float]]  # candidate -> (accuracy, -mean log loss) out of fold


def _first_labels(targets: torch.Tensor) -> np.ndarray:
    """A category per image to stratify by: the class (multiclass), the first label (multilabel;
    -1 for an image without labels)."""
    if targets.dim() == 1:
        return targets.numpy()
    rows = targets.numpy() > 0.5
    return np.where(rows.any(1), rows.argmax(1), -1)


def folds_for(targets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(images that can be scored, their fold): images of categories with at least two images, in
    k stratified folds, k = the smallest such category's size (at most MAX_FOLDS). Every fold holds
    out the same share of every category, so each fold's head sees the categories in their real
    proportions: holding out one image of one category (leave-one-out) leaves that category
    outnumbered, and at 2 shots its image is then almost never predicted right."""
    category = _first_labels(targets)
    values, counts = np.unique(category, return_counts=True)
    sizes = {int(v): int(n) for v, n in zip(values, counts, strict=True) if n >= 2}
    scored = np.asarray([i for i in range(len(category)) if int(category[i]) in sizes], dtype=np.int64)
    if len(scored) == 0:
        return scored, scored
    k = min(min(sizes.values()), MAX_FOLDS)
    folds = np.empty(len(category), dtype=np.int64)
    seen: dict[int, int] = {}
    for i in scored.tolist():
        rank = seen.get(int(category[i]), 0)
        seen[int(category[i])] = rank + 1
        folds[i] = rank % k
    return scored, folds[scored]


def features_for(pooled: torch.Tensor, candidate: HeadCandidate) -> torch.Tensor:
    """pooled [V, N, D] -> the candidate's embeddings [V', N, D]."""
    views = pooled if candidate.all_views else pooled[:1]
    return normalise(views, power=candidate.power)


def fit_candidate(pooled: torch.Tensor, targets: torch.Tensor, rows: Sequence[int] | np.ndarray,
                  candidate: HeadCandidate, num_classes: int, multilabel: bool, c: float) -> torch.nn.Linear:
    emb = features_for(pooled[:, torch.as_tensor(rows, dtype=torch.long)], candidate)
    views = emb.shape[0]
    flat_targets = targets[torch.as_tensor(rows, dtype=torch.long)]
    flat_targets = flat_targets.repeat(views, *([1] * (flat_targets.dim() - 1)))
    return fit_linear_head(emb.reshape(-1, emb.shape[-1]), flat_targets, num_classes, multilabel=multilabel, c=c)


@torch.no_grad()
def out_of_fold_logits(pooled: torch.Tensor, targets: torch.Tensor, scored: np.ndarray, folds: np.ndarray,
                       candidate: HeadCandidate, num_classes: int, multilabel: bool, c: float) -> torch.Tensor:
    """[len(scored), C] logits of each scored image's original view by the head fitted without its
    fold (every image outside the fold trains, including those of single-image categories)."""
    everyone = np.arange(pooled.shape[1])
    out = torch.zeros(len(scored), num_classes)
    original = normalise(pooled[0], power=candidate.power)
    for fold in np.unique(folds):
        held = scored[folds == fold]
        train = np.setdiff1d(everyone, held)
        with torch.enable_grad():
            head = fit_candidate(pooled, targets, train, candidate, num_classes, multilabel, c)
        out[torch.from_numpy(np.nonzero(folds == fold)[0])] = head(original[torch.from_numpy(held)])
    return out


def score(logits: torch.Tensor, targets: torch.Tensor, multilabel: bool) -> tuple[float, float]:
    """(accuracy, -mean log loss): ordered tuples, so accuracy decides and the loss breaks ties;
    multilabel accuracy is per label."""
    if multilabel:
        accuracy = ((logits > 0).float() == targets).float().mean()
        loss = F.binary_cross_entropy_with_logits(logits, targets)
    else:
        accuracy = (logits.argmax(1) == targets).float().mean()
        loss = F.cross_entropy(logits, targets)
    return round(float(accuracy), 6), round(-float(loss), 6)


def choose_head(pooled: torch.Tensor, targets: torch.Tensor, num_classes: int, *, multilabel: bool, c: float,
                candidates: Sequence[HeadCandidate] = CANDIDATES) -> Selection | None:
    """The first candidate unless a later one is right out of fold on clearly more images (MARGIN):
    the log loss does not rank candidates (their scales differ until calibrated); None when no
    category has two images."""
    scored, folds = folds_for(targets)
    if len(scored) == 0:
        return None
    truth = targets[torch.from_numpy(scored)]
    best: Selection | None = None
    table: dict[str, tuple[float, float]] = {}
    for candidate in candidates:
        logits = out_of_fold_logits(pooled, targets, scored, folds, candidate, num_classes, multilabel, c)
        table[candidate.name] = score(logits, truth, multilabel)
        if best is None or _clearly_better(table[candidate.name][0], table[best.candidate.name][0], len(scored)):
            best = Selection(candidate, scored, folds, logits, table)
    assert best is not None
    return best


def _clearly_better(accuracy: float, than: float, images: int) -> bool:
    # accuracies are rounded to 6 digits: compare image counts with a tolerance of a hundredth
    return accuracy - than >= MARGIN - 1e-6 and (accuracy - than) * images >= MARGIN_IMAGES - 0.01


def _loss(logits: torch.Tensor, targets: torch.Tensor, multilabel: bool) -> torch.Tensor:
    if multilabel:
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / max(1, logits.shape[1])
    return F.cross_entropy(logits, targets, reduction="sum")


@torch.no_grad()
def fit_temperature(logits: torch.Tensor, targets: torch.Tensor, multilabel: bool,
                    prior_per_image: float = 0.0) -> float:
    """T minimising the summed log loss of logits / T plus (PRIOR_WEIGHT + prior_per_image * images)
    * (log T)^2 (a grid: one parameter, no local minima to fall into); 1.0 without images."""
    if logits.shape[0] == 0:
        return 1.0
    weight = PRIOR_WEIGHT + prior_per_image * logits.shape[0]
    best_t, best = 1.0, math.inf
    for log_t in np.linspace(*LOG_T_RANGE, LOG_T_STEPS):
        value = float(_loss(logits / math.exp(log_t), targets, multilabel)) + weight * log_t**2
        if value < best:
            best_t, best = math.exp(log_t), value
    return best_t


def all_right(logits: torch.Tensor, targets: torch.Tensor, multilabel: bool) -> bool:
    """Every image predicted right (multilabel: every label on the right side of 0.5)."""
    if multilabel:
        return bool(((logits > 0).float() == targets.float()).all())
    return bool((logits.argmax(1) == targets).all())


def logit_scale(logits: torch.Tensor, multilabel: bool) -> float:
    """Root mean square of the logits about each image's mean (a softmax ignores that mean; a
    sigmoid does not, so multilabel logits are taken about 0)."""
    centred = logits if multilabel else logits - logits.mean(1, keepdim=True)
    return float(centred.pow(2).mean().sqrt()) if centred.numel() else 0.0


@torch.no_grad()
def split_temperature(held_logits: torch.Tensor, held_truth: torch.Tensor, multilabel: bool,
                      linear_logits: torch.Tensor | None = None, linear_truth: torch.Tensor | None = None,
                      scale: float = 1.0) -> float:
    """The fine-tuned model's T: fitted on the split pass's held-out logits with the per-image
    prior. When every held-out image is right their log loss only falls as T falls and the prior,
    centred at T = 1, alone sets T. The linear head's out-of-fold logits of every training image
    are then the larger evidence: their T, times ``scale`` (how much larger the fine-tuned logits
    are than the linear head's on the same held-out images), is kept when it is the sharper.
    Measured in docs/training.md#classifiers: the separable sets had been served T 0.5-0.9 where
    their test sets asked for 0.05-0.3."""
    t = fit_temperature(held_logits, held_truth, multilabel, SPLIT_PRIOR_PER_IMAGE)
    if linear_logits is None or linear_truth is None or linear_logits.shape[0] == 0 or not scale > 0:
        return t
    if held_logits.shape[0] == 0 or not all_right(held_logits, held_truth, multilabel):
        return t
    return min(t, scale * fit_temperature(linear_logits, linear_truth, multilabel))


@torch.no_grad()
def cross_fitted_probabilities(logits: torch.Tensor, targets: torch.Tensor, folds: np.ndarray,
                               multilabel: bool,
                               temperature: Callable[[np.ndarray], float] | None = None) -> np.ndarray:
    """Out-of-fold probabilities, each fold's scaled by the temperature fitted on the other folds:
    the reported calibration is not measured on the images that fitted it. ``temperature``, when
    given, fits T from the mask of the rows it may use (else fit_temperature on those rows)."""
    out = torch.zeros_like(logits)
    for fold in np.unique(folds):
        inside = torch.from_numpy(folds == fold)
        if not (~inside).any():
            t = 1.0
        elif temperature is not None:
            t = temperature((~inside).numpy())
        else:
            t = fit_temperature(logits[~inside], targets[~inside], multilabel)
        scaled = logits[inside] / t
        out[inside] = torch.sigmoid(scaled) if multilabel else torch.softmax(scaled, dim=1)
    return out.numpy()
