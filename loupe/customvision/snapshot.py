"""A project's labelled images as an Azure COCO dataset (docs/customvision.md#training): what an
iteration trains on, and its fingerprint (the same fingerprint: nothing to train).

Categories are the project's Regular tags in creation order (ids from 1); each image references its
original blob by ``absolute_url`` (Loupe's own account, the Custom Vision container); boxes are the
regions' fractions, as Azure's COCO dialect wants them. Images with the Negative tag take part
without annotations (a classifier's "none of these"), as the retired service used them.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass

from loupe.customvision import limits
from loupe.customvision.blobs import ImageBlobs, image_prefix
from loupe.customvision.errors import bad_request
from loupe.customvision.records import ImageRecord, ProjectRecord, TagRecord


@dataclass
class Snapshot:
    coco: dict
    fingerprint: str
    image_ids: list[str]
    tag_names: dict[str, str]  # tag id -> name, of the tags trained


def _labelled(image: ImageRecord, detection: bool, regular: dict[str, TagRecord]) -> list:
    if detection:
        return [r for r in image.regions if r.tag_id in regular]
    return [t for t in image.tags if t.tag_id in regular]


def build_snapshot(project: ProjectRecord, detection: bool, tags: list[TagRecord], images: list[ImageRecord],
                   blobs: ImageBlobs, selected: list[str]) -> Snapshot:
    """Raises BadRequestTrainingValidationFailed when the project cannot train (and says why)."""
    regular = {t.id: t for t in tags if t.type == "Regular" and (not selected or t.id in selected)}
    negative = {t.id for t in tags if t.type == "Negative"}
    chosen, negatives = [], []
    for image in sorted(images, key=lambda i: i.id):
        if _labelled(image, detection, regular):
            chosen.append(image)
        elif project.use_negative_set and negative & {t.tag_id for t in image.tags}:
            negatives.append(image)
    _validate(project, detection, regular, chosen)
    order = [t for t in sorted(regular.values(), key=lambda t: (t.created, t.id))]
    category = {tag.id: index + 1 for index, tag in enumerate(order)}
    coco_images, annotations = [], []
    for number, image in enumerate(chosen + negatives, start=1):
        coco_images.append({"id": number, "width": image.width, "height": image.height,
                            "file_name": f"{image.id}.{image.format.lower()}",
                            "absolute_url": blobs.url(image_prefix(project.id, image.id) + "original")})
        for item in _labelled(image, detection, regular):
            entry = {"id": len(annotations) + 1, "image_id": number, "category_id": category[item.tag_id]}
            if detection:
                entry["bbox"] = [item.left, item.top, item.width, item.height]
            annotations.append(entry)
    coco = {"images": coco_images, "annotations": annotations,
            "categories": [{"id": category[t.id], "name": t.name} for t in order]}
    fingerprint = hashlib.sha256(json.dumps(
        [project.classification_type, project.domain_id, sorted(selected),
         {t.id: t.name for t in order}, coco["annotations"], [i["file_name"] for i in coco_images]],
        sort_keys=True).encode()).hexdigest()
    return Snapshot(coco, fingerprint, [i.id for i in chosen + negatives], {t.id: t.name for t in order})


def _validate(project: ProjectRecord, detection: bool, regular: dict[str, TagRecord],
              chosen: list[ImageRecord]) -> None:
    counts: Counter = Counter()
    for image in chosen:
        counts.update({item.tag_id for item in _labelled(image, detection, regular)})
    fail = "BadRequestTrainingValidationFailed"
    if not chosen:
        what = "regions" if detection else "tags"
        raise bad_request(fail, f"Nothing to train: no image carries {what} of the project's Regular tags.")
    short = [f"'{regular[t].name}' ({counts[t]})" for t in regular if counts[t] < limits.MIN_IMAGES_PER_TAG]
    if short:
        raise bad_request(fail, f"Every tag needs at least {limits.MIN_IMAGES_PER_TAG} images to train; too few: "
                          + ", ".join(short[:20]) + ". Tag more images, or delete the tag.")
    if not detection and len(regular) < 2 and project.classification_type == "Multiclass":
        raise bad_request(fail, "A Multiclass project needs at least 2 tags to train.")
    if not detection and project.classification_type == "Multiclass":
        several = [i.id for i in chosen if len(_labelled(i, False, regular)) > 1]
        if several:
            raise bad_request(fail, f"{len(several)} images carry more than one tag (e.g. image '{several[0]}'), "
                              "which a Multiclass project does not allow; make the project Multilabel or untag them.")
