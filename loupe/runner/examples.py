"""The one example type: a labelled image on local disk, as a job downloaded it. Classifiers read
``labels``, detectors ``boxes``; both trainers, evaluation scoring and benchmarks take these."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from loupe.enums import AnnotationKind

# (category index, left, top, width, height), the box relative to the image (0-1)
Box = tuple[int, float, float, float, float]


@dataclass
class Example:
    path: Path
    source: str = ""  # where it came from, for messages: "file 1 images[3] (file_name 'a.jpg')"
    width: int = 0  # oriented size of the real image
    height: int = 0
    labels: list[int] = field(default_factory=list)  # distinct category indices 0..C-1
    boxes: list[Box] = field(default_factory=list)  # detection only
    key: str = ""  # the image's COCO file_name, as its annotation file gave it (holdout.json's key)

    @property
    def name(self) -> str:
        """How messages name this image."""
        return self.source or str(self.path)


@dataclass
class LocalDataset:
    name: str
    kind: AnnotationKind
    labels: list[str]  # category names; an Example's label i is labels[i]
    images: list[Example]

    @property
    def multilabel(self) -> bool:
        return self.kind is AnnotationKind.CLASSIFICATION and any(len(i.labels) > 1 for i in self.images)


def examples_from_coco(coco: dict, root: Path, labels: list[str] | None = None) -> tuple[list[Example], list[str]]:
    """Examples of an (already valid) Azure COCO document whose images lie under ``root`` by
    ``file_name``, filled as a download fills them; for benchmarks, tests and local runs.
    ``labels`` fixes the category order (a test set in a model's label space)."""
    names = list(labels) if labels is not None else [c["name"] for c in coco["categories"]]
    index = {}
    for category in coco["categories"]:
        if category["name"] not in names:
            raise ValueError(f"categories: {category['name']!r} is not one of {names}")
        index[category["id"]] = names.index(category["name"])
    images = {}
    for i, entry in enumerate(coco["images"]):
        images[entry["id"]] = Example(Path(root) / entry["file_name"], f"images[{i}] (file_name "
                                      f"'{entry['file_name']}')", int(entry["width"]), int(entry["height"]),
                                      key=entry["file_name"])
    for annotation in coco["annotations"]:
        add_annotation(images[annotation["image_id"]], index[annotation["category_id"]], annotation.get("bbox"))
    return list(images.values()), names


def add_annotation(example: Example, label: int, bbox: list[float] | None) -> None:
    if bbox is not None:
        left, top, width, height = (float(v) for v in bbox)
        example.boxes.append((label, left, top, width, height))
    if label not in example.labels:
        example.labels.append(label)
