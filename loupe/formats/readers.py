"""Readers for YOLO, Pascal VOC, CVAT XML and class folders (docs/formats.md#layouts).

Box parsing is globox's (BoundingBox.from_txt / from_xml / from_cvat): it owns each format's
coordinate conventions. Loupe walks the files itself, one line, object or box at a time, because
globox's whole-folder readers report a failing file but not the line or object, and docs/formats.md#errors
promises the place in the source."""
from __future__ import annotations

import posixpath
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml
from globox import BoundingBox, BoxFormat
from globox.errors import ParsingError

from loupe.formats.images import ImageIndex, is_image
from loupe.formats.model import Entry, FormatError, Label, Layout, Parsed

SPLIT_FOLDERS = frozenset({"train", "val", "valid", "validation", "test"})
YOLO_NAME_FILES = ("classes.txt", "obj.names")  # Label Studio's / CVAT's YOLO exports, darknet


def _read_text(root: Path, rel: str, max_bytes: int) -> str:
    path = root / rel
    if path.stat().st_size > max_bytes:
        raise FormatError(rel, f"larger than {max_bytes:,} bytes (docs/formats.md#limits)")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(rel, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def parse_xml(root: Path, rel: str, max_bytes: int) -> ET.Element:
    try:
        return ET.fromstring(_read_text(root, rel, max_bytes))
    except ET.ParseError as exc:
        raise FormatError(f"{rel} line {exc.position[0]}", f"not well-formed XML ({exc})") from None


# --- YOLO


def yolo_names(root: Path, files: list[str], max_bytes: int) -> tuple[list[str], str]:
    """The class names, by index: data.yaml's ``names`` (a list or {index: name}), else classes.txt."""
    for rel in files:
        if rel.lower().endswith((".yaml", ".yml")):
            try:
                doc = yaml.safe_load(_read_text(root, rel, max_bytes))
            except yaml.YAMLError as exc:
                raise FormatError(rel, f"not valid YAML ({exc})") from None
            if isinstance(doc, dict) and "names" in doc:
                names = doc["names"]
                if isinstance(names, dict) and all(isinstance(k, int) for k in names):
                    if sorted(names) != list(range(len(names))):
                        raise FormatError(f"{rel} names", "indexes must run 0, 1, 2, ... without gaps")
                    names = [names[i] for i in range(len(names))]
                if not isinstance(names, list) or not all(isinstance(n, (str, int)) for n in names):
                    raise FormatError(f"{rel} names", "must be a list of class names or a {index: name} mapping")
                return [str(n) for n in names], rel
    for rel in files:
        if posixpath.basename(rel) in YOLO_NAME_FILES:
            return [line.strip() for line in _read_text(root, rel, max_bytes).splitlines() if line.strip()], rel
    raise FormatError("", "a YOLO dataset needs data.yaml with `names` (or classes.txt)")


def yolo_label_path(image: str) -> str:
    """Ultralytics' rule: the last `images` folder becomes `labels`, the suffix `.txt`; with no
    `images` folder the label file lies beside the image."""
    parts = image.split("/")
    stem = posixpath.splitext(parts[-1])[0] + ".txt"
    folders = parts[:-1]
    for i in range(len(folders) - 1, -1, -1):
        if folders[i] == "images":
            folders[i] = "labels"
            break
    return "/".join([*folders, stem])


def read_yolo(root: Path, files: list[str], index: ImageIndex, max_bytes: int) -> Parsed:
    names, names_file = yolo_names(root, files, max_bytes)
    present = set(files)
    entries, used, warnings = [], set(), []
    for image in sorted(index.paths):
        label_file = yolo_label_path(image)
        size = index.size(image)
        entry = Entry(image, *size)
        entries.append(entry)
        if label_file not in present:
            continue
        used.add(label_file)
        lines = _read_text(root, label_file, max_bytes).splitlines()
        for number, line in enumerate(lines, start=1):
            if line.strip():
                entry.labels.append(_yolo_box(line, size, names, names_file, f"{label_file} line {number}"))
    orphans = [f for f in files if f.endswith(".txt") and "labels/" in f"/{f}" and f not in used]
    if orphans:
        warnings.append(f"{len(orphans)} label file(s) without an image were skipped, e.g. {orphans[0]}")
    return Parsed(Layout.YOLO, entries, names, warnings)


def _yolo_box(line: str, size: tuple[int, int], names: list[str], names_file: str, place: str) -> Label:
    values = line.split()
    if len(values) != 5:
        raise FormatError(place, f"expected `class x_center y_center width height`, got {len(values)} values "
                          "(polygon and pose lines are not supported)")
    try:
        box = BoundingBox.from_txt(line, box_format=BoxFormat.XYWH, relative=True, image_size=size)
    except (ParsingError, ValueError, AssertionError) as exc:
        raise FormatError(place, f"not a YOLO box ({exc or 'bad numbers'})") from None
    if not box.label.isdigit() or int(box.label) >= len(names):
        raise FormatError(place, f"class index {box.label} is not one of the {len(names)} names in {names_file} "
                          f"(0..{len(names) - 1})")
    return Label(names[int(box.label)], place, box.ltrb)


# --- Pascal VOC and CVAT XML


def read_voc(root: Path, xml_files: list[str], index: ImageIndex, max_bytes: int) -> Parsed:
    entries, names = [], {}
    for rel in xml_files:
        doc = parse_xml(root, rel, max_bytes)
        filename = doc.findtext("filename") or posixpath.basename(doc.findtext("path") or "")
        if not filename:
            raise FormatError(f"{rel} <filename>", "missing")
        image = index.resolve(filename, posixpath.dirname(rel), f"{rel} <filename>")
        declared = (_int(doc.findtext("size/width")), _int(doc.findtext("size/height")))
        entry = Entry(image, *index.checked_size(image, declared, f"{rel} <size>"))
        for number, node in enumerate(doc.iter("object"), start=1):
            place = f"{rel} object {number}"
            try:
                box = BoundingBox.from_xml(node)
            except (ParsingError, ValueError, AssertionError) as exc:
                raise FormatError(place, f"not a VOC object ({exc or 'bad numbers'})") from None
            names.setdefault(box.label, None)
            entry.labels.append(Label(box.label, place, box.ltrb))
        entries.append(entry)
    return Parsed(Layout.VOC, entries, list(names))


def read_cvat(root: Path, rel: str, index: ImageIndex, max_bytes: int) -> Parsed:
    doc = parse_xml(root, rel, max_bytes)
    names = {n.text.strip(): None for n in doc.iterfind("meta//labels/label/name") if n.text}
    entries = []
    for number, node in enumerate(doc.iter("image"), start=1):
        place = f"{rel} image {number}"
        image = index.resolve(node.get("name") or "", posixpath.dirname(rel), place)
        entry = Entry(image, *index.checked_size(image, (_int(node.get("width")), _int(node.get("height"))), place))
        for j, box_node in enumerate(node.iter("box"), start=1):
            try:
                box = BoundingBox.from_cvat(box_node)
            except (ParsingError, ValueError, AssertionError) as exc:
                raise FormatError(f"{place} box {j}", f"not a CVAT box ({exc or 'bad numbers'})") from None
            names.setdefault(box.label, None)
            entry.labels.append(Label(box.label, f"{place} box {j}", box.ltrb))
        for j, tag in enumerate(node.iter("tag"), start=1):
            if label := tag.get("label"):
                names.setdefault(label, None)
                entry.labels.append(Label(label, f"{place} tag {j}"))
        entries.append(entry)
    return Parsed(Layout.CVAT, entries, list(names))


def _int(text: str | None) -> int:
    try:
        return int(float(text)) if text is not None else 0
    except ValueError:
        return 0


# --- class folders (and YOLO classification: <split>/<class>/<image>)


def class_of(rel: str) -> str | None:
    parts = rel.split("/")
    if len(parts) == 2:
        return parts[0]
    if len(parts) == 3 and parts[0].lower() in SPLIT_FOLDERS:
        return parts[1]
    return None


def read_class_folders(files: list[str], index: ImageIndex) -> Parsed:
    """Written by hand: no library reads this layout without bringing a framework (torchvision's
    ImageFolder, Ultralytics)."""
    entries, names = [], {}
    for rel in files:
        if not is_image(rel):
            continue
        label = class_of(rel)
        if label is None:
            raise FormatError(rel, "an image outside <class>/ or <split>/<class>/ in a class-folder dataset")
        names.setdefault(label, None)
        entries.append(Entry(rel, *index.size(rel), labels=[Label(label, rel)]))
    return Parsed(Layout.CLASS_FOLDERS, entries, sorted(names))
