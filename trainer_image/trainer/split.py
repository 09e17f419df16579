"""The one stratified hold-out split of both recipes: which training images are set aside to
measure (and steer) a run when no test set is given.

The recipes differ only in their parameters:

- classification (the defaults): about 20% of every category with at least two images, at least
  one image each (``min_images=2, at_least_one=True``);
- detection: about ``fraction`` of the categories with at least ``min_images`` images (20 by
  default) and nothing of the others: few-shot data cannot spare an image
  (``at_least_one=False``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np

# Share of each category held out to measure the model when no test set is given.
HOLDOUT_FRACTION = 0.2


class Labelled(Protocol):
    """An example with category indices 0..C-1 (repeats allowed: a detection image's box labels)."""

    @property
    def labels(self) -> Iterable[int]: ...


def holdout_split(
    examples: Sequence[Labelled],
    num_classes: int,
    seed: int,
    *,
    fraction: float = HOLDOUT_FRACTION,
    min_images: int = 2,
    at_least_one: bool = True,
) -> tuple[list[int], list[int]]:
    """(train indices, hold-out indices), stratified by category and deterministic in ``seed``.

    A category with at least ``min_images`` images gives ``floor(fraction * images)`` of them
    (at least one when ``at_least_one``), never its last one; the others give none. Rare
    categories are served first, and an image (a multilabel or multi-object one) is held out only
    when every category on it can still give one. Images without labels (negatives) count as one
    more category.
    """
    keys = [sorted({int(label) for label in ex.labels}) or [num_classes] for ex in examples]
    counts = np.zeros(num_classes + 1, dtype=int)  # last slot: images without labels
    for key in keys:
        counts[key] += 1
    quota = np.floor(fraction * counts)
    if at_least_one:
        quota = np.maximum(1, quota)
    quota = np.where(counts >= min_images, np.minimum(quota, counts - 1), 0).astype(int)
    order = np.random.default_rng(seed).permutation(len(examples)).tolist()
    # rarest category first, so their few images are considered before common ones
    order.sort(key=lambda i: min(counts[c] for c in keys[i]))
    held: list[int] = []
    for i in order:
        if all(quota[c] > 0 for c in keys[i]):
            quota[keys[i]] -= 1
            held.append(i)
    held_set = set(held)
    return [i for i in range(len(examples)) if i not in held_set], sorted(held)
