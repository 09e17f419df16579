"""Detection training examples: the recipe's input (``loupe.runner.examples.Example``, boxes
relative (left, top, width, height)) validated into the private array form the training loop
uses, safe decoding exactly as prediction decodes, and a content fingerprint for checkpoint
compatibility."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from loupe.artifacts import Preprocessing
from loupe.imaging import TRAINING_LIMITS, ImageRejected, decode_image
from loupe.preprocess import draft_size
from loupe.runner.examples import Example
from trainer.errors import ImagesRejected

# COCO's relative boxes are validated to [0, 1] upstream; allow float noise from conversions.
_SLACK = 1e-6


@dataclass(frozen=True)
class DetectionExample:
    """One training image as the training loop holds it (built from an Example by
    ``to_examples``): boxes relative to the image as x1, y1, x2, y2 in [0, 1]."""

    path: Path
    source: str  # where the image came from, for messages
    width: int  # oriented size of the original image
    height: int
    boxes: np.ndarray  # [M,4] float64
    labels: np.ndarray  # [M] int64, 0-based category indices
    key: str = ""  # the image's COCO file_name (Example.key)


def to_examples(images: Sequence[Example], num_classes: int, *, what: str = "training") -> list[DetectionExample]:
    """Validate and convert; raises ValueError naming the image, the box and what was expected."""
    out = []
    for i, image in enumerate(images):
        where = f"{what} image #{i} ({image.source or image.path})"
        if image.width < 1 or image.height < 1:
            raise ValueError(f"{where}: width and height must be positive; got {image.width}x{image.height}")
        rows = []
        for b, box in enumerate(image.boxes):
            if len(box) != 5:
                raise ValueError(f"{where}: boxes[{b}] must be (category, left, top, width, height); got {box!r}")
            label, left, top, width, height = box
            if not isinstance(label, (int, np.integer)) or not 0 <= label < num_classes:
                raise ValueError(f"{where}: boxes[{b}] category {label!r} is not an index in [0, {num_classes - 1}]")
            values = np.asarray([left, top, width, height], dtype=np.float64)
            if not np.all(np.isfinite(values)) or left < 0 or top < 0 or width <= 0 or height <= 0 \
                    or left + width > 1 + _SLACK or top + height > 1 + _SLACK:
                raise ValueError(f"{where}: boxes[{b}] = [{left}, {top}, {width}, {height}] is not a relative "
                                 "[left, top, width, height] box inside the image (0 <= left, top; 0 < width, "
                                 "height; left + width <= 1; top + height <= 1)")
            rows.append((int(label), left, top, min(1.0, left + width), min(1.0, top + height)))
        array = np.asarray([r[1:] for r in rows], dtype=np.float64).reshape(-1, 4)
        labels = np.asarray([r[0] for r in rows], dtype=np.int64)
        out.append(DetectionExample(Path(image.path), image.source, image.width, image.height, array, labels,
                                    image.key))
    return out


def decode(example: DetectionExample, pre: Preprocessing) -> Image.Image:
    """RGB image as prediction will see it (JPEG draft decoding at ``draft_size(pre)``);
    raises ImagesRejected naming the file."""
    try:
        data = example.path.read_bytes()
    except OSError as exc:
        raise ImagesRejected([(example.source or str(example.path), f"cannot be read: {exc.strerror or exc}")]) \
            from None
    try:
        image, _ = decode_image(data, TRAINING_LIMITS, draft_size=draft_size(pre))
    except ImageRejected as exc:
        raise ImagesRejected([(example.source or str(example.path), exc.message)]) from None
    return image.convert("RGB") if image.mode != "RGB" else image


def pixel_boxes(example: DetectionExample, image: Image.Image) -> np.ndarray:
    """[M,4] x1, y1, x2, y2 in the decoded image's pixels (which may be draft-reduced)."""
    return example.boxes * np.asarray([image.width, image.height, image.width, image.height], dtype=np.float64)


def fingerprint(examples: Sequence[DetectionExample], labels: Sequence[str]) -> str:
    """Content hash of images (bytes, not paths: a resumed run downloads to a new folder), boxes
    and category names."""
    digest = hashlib.sha256()
    digest.update(repr(list(labels)).encode())
    for ex in examples:
        digest.update(hashlib.sha256(ex.path.read_bytes()).digest())
        digest.update(np.round(ex.boxes, 6).tobytes())
        digest.update(ex.labels.tobytes())
    return digest.hexdigest()
