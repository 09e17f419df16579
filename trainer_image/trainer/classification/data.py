"""Classification examples (``loupe.runner.examples.Example``, ``labels`` only): validation, a
content fingerprint for checkpoint compatibility, safe decoding and the target arrays."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from loupe.imaging import TRAINING_LIMITS, ImageRejected, decode_image
from loupe.runner.examples import Example
from trainer.errors import ImagesRejected


def validate_examples(
    examples: Sequence[Example], num_classes: int, *, multilabel: bool, what: str = "training"
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
        where = f"{what} image #{i} ({ex.name})"
        if not multilabel and len(ex.labels) != 1:
            raise ValueError(f"{where}: a multiclass image needs exactly one label; got {list(ex.labels)}")
        if len(set(ex.labels)) != len(ex.labels):
            raise ValueError(f"{where}: repeated labels {list(ex.labels)}")
        for label in ex.labels:
            if not isinstance(label, (int, np.integer)) or not 0 <= label < num_classes:
                raise ValueError(
                    f"{where}: label {label!r} is not a category index in [0, {num_classes - 1}]"
                )


def fingerprint(examples: Sequence[Example], labels: Sequence[str]) -> str:
    """Content hash of the images (bytes, not paths: a resumed run downloads to a new folder),
    their labels and the category names."""
    digest = hashlib.sha256()
    digest.update(repr(list(labels)).encode())
    for ex in examples:
        digest.update(hashlib.sha256(Path(ex.path).read_bytes()).digest())
        digest.update(repr(sorted(ex.labels)).encode())
    return digest.hexdigest()


def load_image(example: Example, draft_size: tuple[int, int]) -> Image.Image:
    """Decode one training image safely (size and bomb limits); raises ImagesRejected naming it."""
    try:
        data = Path(example.path).read_bytes()
    except OSError as exc:
        raise ImagesRejected([(example.name, f"cannot be read: {exc.strerror or exc}")]) from None
    try:
        image, _ = decode_image(data, TRAINING_LIMITS, draft_size=draft_size)
    except ImageRejected as exc:
        raise ImagesRejected([(example.name, exc.message)]) from None
    return image


def targets_array(examples: Sequence[Example], num_classes: int, multilabel: bool) -> np.ndarray:
    """[N] class indices (multiclass) or [N,C] 0/1 float32 (multilabel)."""
    if not multilabel:
        return np.asarray([ex.labels[0] for ex in examples], dtype=np.int64)
    out = np.zeros((len(examples), num_classes), dtype=np.float32)
    for i, ex in enumerate(examples):
        out[i, list(ex.labels)] = 1.0
    return out
