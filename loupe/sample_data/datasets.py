"""The sample datasets `make run` trains on: classification, multilabel and detection, each
with a train and a test split, in the COCO format of docs/wire-contract.md#coco-dataset-format (relative
`file_name`s, no `absolute_url`: the blob-drop path resolves them next to annotations.json).

Every image is drawn from its own seed sequence (seed, dataset, split, image key), so the same
seed gives the same bytes, train and test never share an image, and a smaller train split is a
prefix of a bigger one (2 shots per class are the first 2 of the 5)."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from loupe.enums import AnnotationKind
from loupe.sample_data.scene import Scene, render

Split = Literal["train", "test"]

CLASSIFICATION_KINDS = ("star", "heart", "ring", "arrow")
DETECTION_KINDS = ("star", "heart", "ring")

_DATASET_CODE = {"classification": 1, "multilabel": 2, "detection": 3}
_SPLIT_CODE = {"train": 0, "test": 1}
_MIN_BOXES_PER_CLASS = 5  # detection train split: enough boxes per class to learn from


@dataclass(frozen=True)
class SampleDataset:
    name: str
    kind: AnnotationKind
    multilabel: bool
    coco: dict
    images: dict[str, bytes]  # file_name (relative, e.g. "images/cls_0001.jpg") -> JPEG bytes

    def files(self) -> dict[str, bytes]:
        """Every file of the dataset folder, relative path -> bytes."""
        return {"annotations.json": json.dumps(self.coco, indent=1).encode("utf-8"), **self.images}

    def write(self, folder: Path) -> None:
        for rel, data in self.files().items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def _rng(seed: int, dataset: str, split: Split, *key: int) -> np.random.Generator:
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if split not in _SPLIT_CODE:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return np.random.default_rng([seed, _DATASET_CODE[dataset], _SPLIT_CODE[split], *key])


def _count(value: int | None, default: int, what: str) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value


def _jpeg(scene: Scene, rng: np.random.Generator) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(scene.image).save(buf, format="JPEG", quality=int(rng.integers(82, 95)))
    return buf.getvalue()


def _size(rng: np.random.Generator, lo: int, hi: int) -> tuple[int, int]:
    return int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))


def _relative_box(box: tuple[int, int, int, int], w: int, h: int) -> list[float]:
    """Pixel [left, top, right, bottom) -> relative [left, top, width, height] with
    left + width <= 1 and top + height <= 1 exactly, despite float rounding."""
    out = []
    for lo, hi, size in ((box[0], box[2], w), (box[1], box[3], h)):
        start = round(lo / size, 6)
        extent = round(hi / size - start, 6)
        while start + extent > 1.0:
            extent = float(np.nextafter(extent, 0.0))
        out.append((start, extent))
    (left, width), (top, height) = out
    return [left, top, width, height]


def _coco(name: str, kinds: tuple[str, ...], images: list[dict], annotations: list[dict], seed: int) -> dict:
    return {
        "info": {"description": f"Loupe generated sample dataset {name}", "seed": seed},
        "images": images,
        "annotations": [{"id": i, **a} for i, a in enumerate(annotations, start=1)],
        "categories": [{"id": i, "name": k} for i, k in enumerate(kinds, start=1)],
    }


def classification(split: Split, *, seed: int = 0, per_class: int | None = None) -> SampleDataset:
    """One object per image, one of CLASSIFICATION_KINDS; train 5 per class, test 10."""
    n = _count(per_class, 5 if split == "train" else 10, "per_class")
    images, annotations, files = [], [], {}
    for shot in range(n):
        for label, kind in enumerate(CLASSIFICATION_KINDS):
            rng = _rng(seed, "classification", split, shot, label)
            w, h = _size(rng, 240, 320)
            scene = render(rng, w, h, [kind], radius=(0.28, 0.42), strokes=int(rng.integers(3, 10)),
                           distractors=int(rng.integers(0, 4)), rotation=45.0)
            image_id = len(images) + 1
            file_name = f"images/cls_{image_id:04d}.jpg"
            files[file_name] = _jpeg(scene, rng)
            images.append({"id": image_id, "width": w, "height": h, "file_name": file_name})
            annotations.append({"image_id": image_id, "category_id": label + 1})
    name = "sample-shapes" + ("-test" if split == "test" else "")
    return SampleDataset(name, AnnotationKind.CLASSIFICATION, False,
                         _coco(name, CLASSIFICATION_KINDS, images, annotations, seed), files)


def multilabel(split: Split, *, seed: int = 0, count: int | None = None) -> SampleDataset:
    """One to three distinct kinds per image; labels = the kinds present. Image i always holds
    kind i mod 4, so every kind appears in at least count // 4 images."""
    n = _count(count, 16 if split == "train" else 24, "count")
    images, annotations, files = [], [], {}
    k = len(CLASSIFICATION_KINDS)
    for index in range(n):
        rng = _rng(seed, "multilabel", split, index)
        others = [c for c in range(k) if c != index % k]
        extra = rng.choice(others, size=int(rng.integers(0, 3)), replace=False)
        labels = sorted({index % k, *(int(c) for c in extra)})
        order = rng.permutation(labels)
        w, h = _size(rng, 288, 352)
        scene = render(rng, w, h, [CLASSIFICATION_KINDS[c] for c in order], radius=(0.17, 0.25),
                       strokes=int(rng.integers(3, 10)), distractors=int(rng.integers(0, 3)), rotation=45.0)
        image_id = index + 1
        file_name = f"images/ml_{image_id:04d}.jpg"
        files[file_name] = _jpeg(scene, rng)
        images.append({"id": image_id, "width": w, "height": h, "file_name": file_name})
        annotations.extend({"image_id": image_id, "category_id": c + 1} for c in labels)
    name = "sample-shapes-multilabel" + ("-test" if split == "test" else "")
    return SampleDataset(name, AnnotationKind.CLASSIFICATION, True,
                         _coco(name, CLASSIFICATION_KINDS, images, annotations, seed), files)


def detection_scenes(split: Split, *, seed: int = 0, count: int | None = None
                     ) -> list[tuple[Scene, np.random.Generator]]:
    """The rendered detection scenes (with exact masks) behind `detection`, for checks."""
    n = _count(count, 12, "count")
    plan = _rng(seed, "detection", split)
    per_image = plan.integers(1, 5, size=n)
    c = len(DETECTION_KINDS)
    # Top up small splits so each class gets its boxes, as far as 4 objects per image allow.
    for i in range(n):
        if per_image.sum() >= _MIN_BOXES_PER_CLASS * c:
            break
        per_image[i] = 4
    labels = plan.permutation(np.arange(per_image.sum()) % c)  # balanced classes
    scenes, start = [], 0
    for index, m in enumerate(per_image):
        rng = _rng(seed, "detection", split, index)
        w, h = _size(rng, 320, 416)
        kinds = [DETECTION_KINDS[int(label)] for label in labels[start:start + m]]
        start += m
        scene = render(rng, w, h, kinds, radius=(0.08, 0.16), strokes=int(rng.integers(6, 20)),
                       distractors=int(rng.integers(1, 6)), rotation=45.0)
        scenes.append((scene, rng))
    return scenes


def detection(split: Split, *, seed: int = 0, count: int | None = None) -> SampleDataset:
    """1-4 objects of DETECTION_KINDS per image with tight relative boxes; 12 images a split."""
    images, annotations, files = [], [], {}
    for index, (scene, rng) in enumerate(detection_scenes(split, seed=seed, count=count)):
        h, w = scene.image.shape[:2]
        image_id = index + 1
        file_name = f"images/det_{image_id:04d}.jpg"
        files[file_name] = _jpeg(scene, rng)
        images.append({"id": image_id, "width": w, "height": h, "file_name": file_name})
        annotations.extend(
            {"image_id": image_id, "category_id": DETECTION_KINDS.index(o.kind) + 1,
             "bbox": _relative_box(o.box, w, h)}
            for o in scene.objects
        )
    name = "sample-objects" + ("-test" if split == "test" else "")
    return SampleDataset(name, AnnotationKind.DETECTION, False,
                         _coco(name, DETECTION_KINDS, images, annotations, seed), files)


def all_samples(seed: int = 0) -> list[SampleDataset]:
    """Every sample dataset, train split before test split."""
    return [fn(split, seed=seed) for fn in (classification, multilabel, detection)
            for split in ("train", "test")]
