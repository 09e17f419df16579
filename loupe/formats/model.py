"""What every reader produces and every writer consumes: images with pixel boxes or labels, each
label remembering where in the SOURCE file it came from, so an error can name that place
(docs/formats.md#errors)."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Layout(str, Enum):
    """The layouts detect.py recognises (docs/formats.md#layouts)."""

    AZURE_COCO = "azure-coco"  # already Loupe's dialect: nothing to convert
    COCO = "coco"  # standard COCO (pixel boxes, any ids); CVAT COCO 1.0 and Label Studio's COCO too
    YOLO = "yolo"  # data.yaml + labels/*.txt (Ultralytics; Label Studio's and CVAT's YOLO exports)
    VOC = "voc"  # Pascal VOC XML, one file per image
    CVAT = "cvat"  # CVAT for images 1.1 XML
    LABEL_STUDIO = "label-studio"  # Label Studio JSON export (tasks with annotations)
    CLASS_FOLDERS = "class-folders"  # <class>/<image> or <split>/<class>/<image> (YOLO classification)


class FormatError(ValueError):
    """Input that cannot become an Azure COCO dataset; ``place`` names where, in the source."""

    def __init__(self, place: str, message: str) -> None:
        super().__init__(f"{place}: {message}" if place else message)
        self.place = place
        self.message = message


@dataclass
class Label:
    name: str
    place: str  # e.g. "labels/a.txt line 3", "a.xml object 2", "annotations[17]"
    box: tuple[float, float, float, float] | None = None  # pixels: left, top, right, bottom


@dataclass
class Entry:
    """One image: its path relative to the source root, its size, its labels."""

    path: str
    width: int
    height: int
    labels: list[Label] = field(default_factory=list)


@dataclass
class Parsed:
    layout: Layout
    entries: list[Entry]
    names: list[str]  # categories in source order (YOLO index order, COCO id order, ...)
    warnings: list[str] = field(default_factory=list)
