"""A folder or zip in any supported layout -> a folder holding annotations.json (Azure COCO) and
images/ (docs/formats.md#cli)."""
from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from loupe.formats.azure import to_azure_coco
from loupe.formats.bounds import Limits, extract_zip, list_files
from loupe.formats.detect import detect
from loupe.formats.images import ImageIndex
from loupe.formats.json_readers import load_json, read_coco, read_label_studio
from loupe.formats.model import FormatError, Layout, Parsed
from loupe.formats.readers import read_class_folders, read_cvat, read_voc, read_yolo

ANNOTATION_FILE = "annotations.json"


@dataclass
class Conversion:
    layout: Layout
    images: int
    annotations: int
    categories: list[str]
    warnings: list[str] = field(default_factory=list)


def parse_folder(root: Path, limits: Limits | None = None) -> Parsed:
    """Detect and read ``root``: every image, label and pixel box, with their source places."""
    limits = limits or Limits()
    files = list_files(root, limits)
    layout, annotation_files = detect(root, files, limits.max_annotation_file_bytes)
    index = ImageIndex(root, files)
    max_bytes = limits.max_annotation_file_bytes
    if layout is Layout.YOLO:
        return read_yolo(root, files, index, max_bytes)
    if layout is Layout.VOC:
        return read_voc(root, annotation_files, index, max_bytes)
    if layout is Layout.CLASS_FOLDERS:
        return read_class_folders(files, index)
    parts = []
    for rel in annotation_files:  # COCO, Label Studio and CVAT exports may come as one file per split
        if layout is Layout.CVAT:
            parts.append(read_cvat(root, rel, index, max_bytes))
        elif layout is Layout.LABEL_STUDIO:
            parts.append(read_label_studio(rel, load_json(root, rel, max_bytes), index))
        else:
            parts.append(read_coco(root, rel, load_json(root, rel, max_bytes), index))
    merged = Parsed(Layout.AZURE_COCO if layout is Layout.AZURE_COCO else parts[0].layout, [], [])
    for part in parts:
        merged.entries.extend(part.entries)
        merged.names.extend(n for n in part.names if n not in merged.names)
        merged.warnings.extend(part.warnings)
    return merged


def convert_folder(root: Path, out: Path, limits: Limits | None = None) -> Conversion:
    """Write ``out``/annotations.json and ``out``/images/<source path> for the dataset in ``root``.
    An Azure COCO dataset is copied unchanged: there is nothing to convert."""
    limits = limits or Limits()
    files = list_files(root, limits)
    layout, annotation_files = detect(root, files, limits.max_annotation_file_bytes)
    if layout is Layout.AZURE_COCO:
        _copy(root, out, {rel: rel for rel in files})
        return Conversion(layout, 0, 0, [], [f"already Azure COCO ({', '.join(annotation_files)}): copied unchanged"])
    parsed = parse_folder(root, limits)
    if not parsed.entries:
        raise FormatError(str(root), f"the {parsed.layout.value} dataset has no labelled image")
    file_names = {e.path: f"images/{e.path}" for e in parsed.entries}
    coco, warnings = to_azure_coco(parsed, file_names, f"converted by Loupe from {parsed.layout.value}")
    _copy(root, out, file_names)
    (out / ANNOTATION_FILE).write_text(json.dumps(coco, indent=1), encoding="utf-8")
    return Conversion(parsed.layout, len(coco["images"]), len(coco["annotations"]),
                      [c["name"] for c in coco["categories"]], warnings)


def convert(src: Path, out: Path, limits: Limits | None = None) -> Conversion:
    """``src``: a folder, or a zip checked entry by entry before extracting (docs/formats.md#limits)."""
    limits = limits or Limits()
    if src.is_dir():
        return convert_folder(src, out, limits)
    if not src.is_file():
        raise FormatError(str(src), "no such file or folder")
    if not zipfile.is_zipfile(src):
        raise FormatError(str(src), "neither a folder nor a zip file")
    with tempfile.TemporaryDirectory(prefix="loupe-formats-") as tmp:
        extract_zip(src, Path(tmp), limits)
        return convert_folder(Path(tmp), out, limits)


def _copy(root: Path, out: Path, targets: dict[str, str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for source, target in targets.items():
        (out / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / source, out / target)
