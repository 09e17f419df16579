"""Detection training examples: validated boxes from the orchestration's LocalImage, safe
decoding exactly as prediction decodes, and a content fingerprint for checkpoint compatibility."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from loupe.artifacts import Preprocessing
from loupe.datasets.download import LocalImage
from loupe.imaging import TRAINING_LIMITS, ImageRejected, decode_image
from loupe.preprocess import draft_size
from trainer.errors import ImagesRejected

# COCO's relative boxes are validated to [0, 1] upstream; allow float noise from conversions.
_SLACK = 1e-6


@dataclass(frozen=True)
class DetectionExample:
    """One training image: boxes relative to the image as x1, y1, x2, y2 in [0, 1]."""

    path: Path
    source: str  # where the image came from, for messages
    width: int  # oriented size of the original image
    height: int
    boxes: np.ndarray  # [M,4] float64
    labels: np.ndarray  # [M] int64, 0-based category indices


def to_examples(images: Sequence[LocalImage], num_classes: int, *, what: str = "training") -> list[DetectionExample]:
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
        out.append(DetectionExample(Path(image.path), image.source, image.width, image.height, array, labels))
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


def holdout_split(examples: Sequence[DetectionExample], num_classes: int, seed: int, *, fraction: float,
                  min_images: int) -> tuple[list[int], list[int]]:
    """(train indices, hold-out indices), deterministic in ``seed``.

    Only categories with at least ``min_images`` images give any (about ``fraction`` of them):
    few-shot data cannot spare an image. Rare categories are served first, and an image goes to
    the hold-out only when every category on it can still give one; images without boxes are
    held out at the same rate once there are ``min_images`` of them.
    """
    keys = [sorted(set(ex.labels.tolist())) or [num_classes] for ex in examples]
    counts = np.zeros(num_classes + 1, dtype=int)
    for key in keys:
        counts[key] += 1
    quota = np.where(counts >= min_images, np.floor(fraction * counts), 0).astype(int)
    order = sorted(np.random.default_rng(seed).permutation(len(examples)).tolist(),
                   key=lambda i: min(counts[c] for c in keys[i]))
    held: list[int] = []
    for i in order:
        if all(quota[c] > 0 for c in keys[i]):
            quota[keys[i]] -= 1
            held.append(i)
    held_set = set(held)
    return [i for i in range(len(examples)) if i not in held_set], sorted(held)


def local_images_from_coco(coco: dict, root: Path, labels: Sequence[str] | None = None
                           ) -> tuple[list[LocalImage], list[str]]:
    """LocalImages of a COCO detection file whose images lie under ``root`` (by ``file_name``),
    filled as ``loupe.datasets.download`` fills them; for benchmarks, tests and local runs.
    ``labels`` fixes the category order (an evaluation set in a model's label space)."""
    names = list(labels) if labels is not None else [c["name"] for c in coco["categories"]]
    index = {}
    for c in coco["categories"]:
        if c["name"] not in names:
            raise ValueError(f"categories: {c['name']!r} is not one of {names}")
        index[c["id"]] = names.index(c["name"])
    images = {}
    for i, entry in enumerate(coco["images"]):
        images[entry["id"]] = LocalImage(Path(root) / entry["file_name"], f"images[{i}] (file_name "
                                         f"'{entry['file_name']}')", int(entry["width"]), int(entry["height"]))
    for annotation in coco["annotations"]:
        image = images[annotation["image_id"]]
        label = index[annotation["category_id"]]
        if "bbox" in annotation:
            left, top, width, height = (float(v) for v in annotation["bbox"])
            image.boxes.append((label, left, top, width, height))
        if label not in image.labels:
            image.labels.append(label)
    return list(images.values()), names
