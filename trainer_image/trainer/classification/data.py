"""Training examples: validation, a deterministic stratified hold-out split, a content
fingerprint for checkpoint compatibility, and safe decoding."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from loupe.imaging import TRAINING_LIMITS, ImageRejected, decode_image
from trainer.errors import ImagesRejected

# Share of each category held out to measure the model when no test set is given.
HOLDOUT_FRACTION = 0.2


@dataclass(frozen=True)
class LabelledImage:
    """A local image file (already downloaded) and its category indices 0..C-1."""

    path: Path
    labels: list[int] = field(default_factory=list)


def validate_examples(
    examples: Sequence[LabelledImage], num_classes: int, *, multilabel: bool, what: str = "training"
) -> None:
    """Raises ValueError naming the first offending image and what was expected."""
    if num_classes < 1 or (not multilabel and num_classes < 2):
        raise ValueError(
            f"a {'multilabel' if multilabel else 'multiclass'} classifier needs at least "
            f"{1 if multilabel else 2} categories; got {num_classes}"
        )
    if not examples and what == "training":
        raise ValueError("no training images")
    for i, ex in enumerate(examples):
        where = f"{what} image #{i} ({ex.path})"
        if not multilabel and len(ex.labels) != 1:
            raise ValueError(f"{where}: a multiclass image needs exactly one label; got {list(ex.labels)}")
        if len(set(ex.labels)) != len(ex.labels):
            raise ValueError(f"{where}: repeated labels {list(ex.labels)}")
        for label in ex.labels:
            if not isinstance(label, (int, np.integer)) or not 0 <= label < num_classes:
                raise ValueError(
                    f"{where}: label {label!r} is not a category index in [0, {num_classes - 1}]"
                )


def holdout_split(
    examples: Sequence[LabelledImage], num_classes: int, seed: int, fraction: float = HOLDOUT_FRACTION
) -> tuple[list[int], list[int]]:
    """(train indices, hold-out indices), stratified by category and deterministic in ``seed``.

    Each category gives about ``fraction`` of its images (at least one when it has two or more)
    and always keeps at least one training image; rare categories are served first, so a
    multilabel image is held out only when none of its categories would lose its last training
    image. Images without labels (multilabel negatives) are held out at the same rate.
    """
    counts = np.zeros(num_classes + 1, dtype=int)  # last slot: images without labels
    keys = [list(ex.labels) or [num_classes] for ex in examples]
    for k in keys:
        counts[k] += 1
    target = np.where(counts >= 2, np.maximum(1, np.floor(fraction * counts)), 0).astype(int)
    order = np.random.default_rng(seed).permutation(len(examples))
    # rarest category first, so their few images are considered before common ones
    order = sorted(order, key=lambda i: min(counts[k] for k in keys[i]))
    held = np.zeros_like(counts)
    holdout: set[int] = set()
    for i in order:
        k = keys[i]
        if all(held[c] < target[c] and counts[c] - held[c] > 1 for c in k):
            held[k] += 1
            holdout.add(int(i))
    train = [i for i in range(len(examples)) if i not in holdout]
    return train, sorted(holdout)


def fingerprint(examples: Sequence[LabelledImage], labels: Sequence[str]) -> str:
    """Content hash of the images (bytes, not paths: a resumed run downloads to a new folder),
    their labels and the category names."""
    digest = hashlib.sha256()
    digest.update(repr(list(labels)).encode())
    for ex in examples:
        digest.update(hashlib.sha256(Path(ex.path).read_bytes()).digest())
        digest.update(repr(sorted(ex.labels)).encode())
    return digest.hexdigest()


def load_image(path: Path, draft_size: tuple[int, int]) -> Image.Image:
    """Decode one training image safely (size and bomb limits); raises ImagesRejected."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImagesRejected([(str(path), f"cannot be read: {exc.strerror or exc}")]) from None
    try:
        image, _ = decode_image(data, TRAINING_LIMITS, draft_size=draft_size)
    except ImageRejected as exc:
        raise ImagesRejected([(str(path), exc.message)]) from None
    return image


def targets_array(examples: Sequence[LabelledImage], num_classes: int, multilabel: bool) -> np.ndarray:
    """[N] class indices (multiclass) or [N,C] 0/1 float32 (multilabel)."""
    if not multilabel:
        return np.asarray([ex.labels[0] for ex in examples], dtype=np.int64)
    out = np.zeros((len(examples), num_classes), dtype=np.float32)
    for i, ex in enumerate(examples):
        out[i, list(ex.labels)] = 1.0
    return out
