"""Readers for standard COCO (CVAT COCO 1.0, Label Studio's COCO export) and Label Studio's JSON
export (docs/formats.md#layouts).

COCO: globox's from_coco has no error handling, drops iscrowd and loses each annotation's index,
so Loupe walks the JSON itself and lets globox's BoundingBox.create own the LTWH convention.
Label Studio JSON: no library reads it outside Label Studio's own (heavy: pandas, nltk) package,
so it is read here; its boxes are percentages of the image with a top-left origin."""
from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

from globox import BoundingBox, BoxFormat

from loupe.formats.images import ImageIndex
from loupe.formats.model import Entry, FormatError, Label, Layout, Parsed


def load_json(root: Path, rel: str, max_bytes: int) -> Any:
    path = root / rel
    if path.stat().st_size > max_bytes:
        raise FormatError(rel, f"larger than {max_bytes:,} bytes (docs/formats.md#limits)")
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(rel, f"not valid JSON ({exc})") from None


def _number(value: Any, place: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FormatError(place, f"expected a number, got {value!r}")
    return float(value)


def read_coco(root: Path, rel: str, doc: dict, index: ImageIndex) -> Parsed:
    cats = {}
    for i, cat in enumerate(doc.get("categories") or []):
        if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
            raise FormatError(f"{rel} categories[{i}]", "needs an id and a name")
        cats[cat["id"]] = str(cat["name"])
    images: dict[Any, Entry] = {}
    for i, img in enumerate(doc.get("images") or []):
        place = f"{rel} images[{i}]"
        if not isinstance(img, dict) or "id" not in img or not isinstance(img.get("file_name"), str):
            raise FormatError(place, "needs an id and a file_name")
        path = index.resolve(img["file_name"], posixpath.dirname(rel), place)
        declared = (int(img.get("width") or 0), int(img.get("height") or 0))
        images[img["id"]] = Entry(path, *index.checked_size(path, declared, place))
    warnings, crowd, segmented = [], 0, 0
    for i, ann in enumerate(doc.get("annotations") or []):
        place = f"{rel} annotations[{i}]"
        if not isinstance(ann, dict):
            raise FormatError(place, "not an object")
        if ann.get("image_id") not in images:
            raise FormatError(place, f"image_id {ann.get('image_id')!r} is not an image of the file")
        if ann.get("category_id") not in cats:
            raise FormatError(place, f"category_id {ann.get('category_id')!r} is not a category of the file")
        if ann.get("iscrowd"):
            crowd += 1  # a crowd region is not one object: Azure COCO has no way to say so
            continue
        segmented += bool(ann.get("segmentation"))
        label = Label(cats[ann["category_id"]], place)
        if ann.get("bbox") is not None:
            bbox = ann["bbox"]
            if not isinstance(bbox, list) or len(bbox) != 4:
                raise FormatError(f"{place} bbox", f"expected [x, y, width, height] in pixels, got {bbox!r}")
            coords = tuple(_number(v, f"{place} bbox") for v in bbox)
            if coords[2] <= 0 or coords[3] <= 0:
                raise FormatError(f"{place} bbox", f"width and height must be positive, got {bbox!r}")
            label.box = BoundingBox.create(label=label.name, coords=coords, box_format=BoxFormat.LTWH).ltrb
        images[ann["image_id"]].labels.append(label)
    if crowd:
        warnings.append(f"{rel}: {crowd} iscrowd annotation(s) skipped (a crowd region is not one object)")
    if segmented:
        warnings.append(f"{rel}: segmentation of {segmented} annotation(s) ignored; their boxes are kept")
    used = [cats[k] for k in sorted(cats, key=lambda k: (str(type(k)), k))]
    return Parsed(Layout.COCO, list(images.values()), used, warnings)


def read_label_studio(rel: str, tasks: list, index: ImageIndex) -> Parsed:
    entries, names, warnings, skipped = [], {}, [], 0
    for i, task in enumerate(tasks):
        place = f"{rel} task {i}" + (f" (id {task.get('id')})" if isinstance(task, dict) and "id" in task else "")
        data = task.get("data") if isinstance(task, dict) else None
        url = next((v for v in (data or {}).values() if isinstance(v, str)), None)
        if url is None:
            raise FormatError(place, "no image URL in `data`")
        done = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
        if not done:
            skipped += 1  # not labelled yet (or only predictions): nothing to learn from
            continue
        image = index.resolve_url(url, place)
        entry = Entry(image, *index.size(image))
        for j, result in enumerate(done[0].get("result") or []):
            label = _ls_result(result, entry, f"{place} result {j}")
            for name in label:
                names.setdefault(name.name, None)
            entry.labels.extend(label)
        entries.append(entry)
    if skipped:
        warnings.append(f"{rel}: {skipped} task(s) without a completed annotation skipped")
    return Parsed(Layout.LABEL_STUDIO, entries, list(names), warnings)


def _ls_result(result: Any, entry: Entry, place: str) -> list[Label]:
    kind = result.get("type") if isinstance(result, dict) else None
    value = result.get("value") or {} if isinstance(result, dict) else {}
    if kind == "choices":
        return [Label(str(c), place) for c in value.get("choices") or []]
    if kind != "rectanglelabels":
        raise FormatError(place, f"result type {kind!r} is not supported (only rectanglelabels and choices)")
    if _number(value.get("rotation", 0), f"{place} rotation"):
        raise FormatError(place, "rotated boxes are not supported")
    declared = (int(result.get("original_width") or 0), int(result.get("original_height") or 0))
    if declared[0] and (declared != (entry.width, entry.height)) and declared[::-1] != (entry.width, entry.height):
        raise FormatError(place, f"original size {declared[0]}x{declared[1]} but {entry.path} is "
                          f"{entry.width}x{entry.height}")
    coords = tuple(_number(value.get(k), f"{place} {k}") / 100 for k in ("x", "y", "width", "height"))
    labels = value.get("rectanglelabels") or []
    if len(labels) != 1:
        raise FormatError(place, f"a box needs exactly one label, got {labels!r}")
    box = BoundingBox.create(label=str(labels[0]), coords=coords, box_format=BoxFormat.LTWH, relative=True,
                             image_size=(entry.width, entry.height))
    return [Label(str(labels[0]), place, box.ltrb)]
