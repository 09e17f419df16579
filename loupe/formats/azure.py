"""Parsed images and pixel boxes -> Azure COCO (docs/wire-contract.md#coco-dataset-format): boxes
as fractions of the image, ids from 1, file_name relative to the annotation file. A box that
crosses the image edge by at most a pixel (rounding in the labelling tool) is clipped with a
warning; further out it is refused (docs/formats.md#boxes)."""
from __future__ import annotations

from loupe.formats.model import Entry, FormatError, Label, Parsed

CLIP_TOLERANCE_PX = 1.0


def _fraction_box(label: Label, entry: Entry) -> tuple[list[float], bool]:
    assert label.box is not None
    left, top, right, bottom = label.box
    w, h = entry.width, entry.height
    tol = CLIP_TOLERANCE_PX
    if left < -tol or top < -tol or right > w + tol or bottom > h + tol:
        raise FormatError(label.place, f"box ({left:g}, {top:g}, {right:g}, {bottom:g}) lies outside the "
                          f"{w}x{h} image {entry.path} by more than {tol:g} pixel (docs/formats.md#boxes)")
    clipped = (max(left, 0.0), max(top, 0.0), min(right, float(w)), min(bottom, float(h)))
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        raise FormatError(label.place, f"box ({left:g}, {top:g}, {right:g}, {bottom:g}) is empty")
    x, y = clipped[0] / w, clipped[1] / h
    return [x, y, min(clipped[2] / w - x, 1.0 - x), min(clipped[3] / h - y, 1.0 - y)], clipped != label.box


def to_azure_coco(parsed: Parsed, file_names: dict[str, str], description: str) -> tuple[dict, list[str]]:
    """``file_names``: source path -> file_name in the output (relative to the annotation file)."""
    with_box = [lab for e in parsed.entries for lab in e.labels if lab.box is not None]
    without = next((lab for e in parsed.entries for lab in e.labels if lab.box is None), None)
    if with_box and without is not None:
        raise FormatError(without.place, "an image-level label in a dataset of boxes: one dataset is either "
                          "classification or detection")
    used = {lab.name for e in parsed.entries for lab in e.labels}
    names = [n for n in parsed.names if n in used] + sorted(used - set(parsed.names))
    ids = {name: i for i, name in enumerate(names, start=1)}
    warnings = list(parsed.warnings)
    if unused := [n for n in parsed.names if n not in used]:
        warnings.append(f"{len(unused)} categor(y/ies) without any label left out: {', '.join(unused[:5])}")
    images, annotations, clipped = [], [], []
    for image_id, entry in enumerate(parsed.entries, start=1):
        images.append({"id": image_id, "width": entry.width, "height": entry.height,
                       "file_name": file_names[entry.path]})
        seen: set[str] = set()
        for label in entry.labels:
            ann = {"id": len(annotations) + 1, "image_id": image_id, "category_id": ids[label.name]}
            if label.box is not None:
                ann["bbox"], was_clipped = _fraction_box(label, entry)
                if was_clipped:
                    clipped.append(label.place)
            elif label.name in seen:
                continue  # a class folder or tag repeated on one image is one label
            seen.add(label.name)
            annotations.append(ann)
    if clipped:
        warnings.append(f"{len(clipped)} box(es) within 1 pixel outside the image clipped, e.g. {clipped[0]}")
    coco = {"info": {"description": description}, "images": images, "annotations": annotations,
            "categories": [{"id": i, "name": n} for n, i in ids.items()]}
    return coco, warnings
