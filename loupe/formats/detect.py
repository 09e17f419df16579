"""Which layout a folder holds (docs/formats.md#layouts): each layout has one signature, and a
folder matching none or several is refused with the list of what was looked for."""
from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

from loupe.formats.images import is_image
from loupe.formats.json_readers import load_json
from loupe.formats.model import FormatError, Layout
from loupe.formats.readers import YOLO_NAME_FILES, class_of, parse_xml

LOOKED_FOR = ("Azure COCO (.json, boxes as fractions)", "standard COCO (.json with images/annotations/categories)",
              "Label Studio JSON export (.json list of tasks)", "YOLO (data.yaml or classes.txt + labels/*.txt)",
              "Pascal VOC (.xml <annotation> per image)", "CVAT for images (.xml <annotations>)",
              "class folders (<class>/<image> or <split>/<class>/<image>)")


def json_layout(doc: Any) -> Layout | None:
    if isinstance(doc, list) and doc and all(isinstance(t, dict) and "data" in t for t in doc):
        return Layout.LABEL_STUDIO
    if isinstance(doc, dict) and isinstance(doc.get("images"), list) and isinstance(doc.get("annotations"), list):
        return Layout.AZURE_COCO if _is_azure(doc) else Layout.COCO
    return None


def _is_azure(doc: dict) -> bool:
    """Azure's dialect: category ids from 1 and every box a fraction of its image. A standard COCO
    file whose boxes all lie within 1 pixel of the origin would pass too; it is not a dataset."""
    cats = doc.get("categories") or []
    if any(not isinstance(c, dict) or not isinstance(c.get("id"), int) or c["id"] < 1 for c in cats):
        return False
    for ann in doc["annotations"]:
        box = ann.get("bbox") if isinstance(ann, dict) else None
        if box is not None and not (isinstance(box, list) and all(
                isinstance(v, (int, float)) and -1e-6 <= v <= 1 + 1e-6 for v in box)):
            return False
    return True


def detect(root: Path, files: list[str], max_bytes: int) -> tuple[Layout, list[str]]:
    """The layout and the annotation files that carry it."""
    found: dict[Layout, list[str]] = {}
    for rel in files:
        suffix = posixpath.splitext(rel)[1].lower()
        layout = None
        if suffix == ".json" and posixpath.basename(rel) not in ("notes.json",):
            layout = json_layout(load_json(root, rel, max_bytes))
        elif suffix == ".xml":
            tag = parse_xml(root, rel, max_bytes).tag
            layout = {"annotation": Layout.VOC, "annotations": Layout.CVAT}.get(tag)
        if layout is not None:
            found.setdefault(layout, []).append(rel)
    has_names = any(rel.lower().endswith((".yaml", ".yml")) or posixpath.basename(rel) in YOLO_NAME_FILES
                    for rel in files)
    label_files = [rel for rel in files if rel.endswith(".txt") and posixpath.basename(rel) not in YOLO_NAME_FILES]
    if has_names and label_files:
        found[Layout.YOLO] = label_files
    images = [rel for rel in files if is_image(rel)]
    if not found and images and all(class_of(rel) is not None for rel in images):
        found[Layout.CLASS_FOLDERS] = []
    if len(found) == 1:
        return next(iter(found.items()))
    if not images:
        raise FormatError(str(root), "no images found (looked for .jpg, .jpeg, .png, .bmp, .gif, .webp, .tif)")
    if not found:
        raise FormatError(str(root), "unknown layout; looked for: " + "; ".join(LOOKED_FOR))
    details = "; ".join(f"{layout.value} ({', '.join(rels[:2]) or 'folders'})" for layout, rels in found.items())
    raise FormatError(str(root), f"ambiguous layout: matches {details}; keep one layout per folder")
