"""The sample datasets are valid COCO in the service's format, with the promised contents."""
from __future__ import annotations

import io
import json
from collections import Counter

import pytest
from cognitive_service_vision_model_customization_python_samples.data.check_coco_annotations import (
    Purpose,
    check_coco_annotation_file,
)
from PIL import Image

from loupe.enums import AnnotationKind
from loupe.sample_data import (
    CLASSIFICATION_KINDS,
    DETECTION_KINDS,
    SampleDataset,
    all_samples,
    classification,
    detection,
    multilabel,
)
from loupe.sample_data.datasets import _relative_box


@pytest.fixture(scope="module")
def samples() -> dict[str, SampleDataset]:
    return {ds.name: ds for ds in all_samples(seed=0)}


def test_names_kinds_and_flags(samples):
    assert {n: (ds.kind, ds.multilabel) for n, ds in samples.items()} == {
        "sample-shapes": (AnnotationKind.CLASSIFICATION, False),
        "sample-shapes-test": (AnnotationKind.CLASSIFICATION, False),
        "sample-shapes-multilabel": (AnnotationKind.CLASSIFICATION, True),
        "sample-shapes-multilabel-test": (AnnotationKind.CLASSIFICATION, True),
        "sample-objects": (AnnotationKind.DETECTION, False),
        "sample-objects-test": (AnnotationKind.DETECTION, False),
    }


def test_ids_are_contiguous_and_references_resolve(samples):
    for name, ds in samples.items():
        coco = ds.coco
        for key in ("images", "annotations", "categories"):
            ids = [item["id"] for item in coco[key]]
            assert ids == list(range(1, len(ids) + 1)), f"{name}: {key} ids"
        assert {a["image_id"] for a in coco["annotations"]} == {i["id"] for i in coco["images"]}, name
        assert {a["category_id"] for a in coco["annotations"]} == {c["id"] for c in coco["categories"]}, name


def test_images_match_their_records(samples):
    for name, ds in samples.items():
        assert sorted(ds.images) == sorted(i["file_name"] for i in ds.coco["images"]), name
        for record in ds.coco["images"]:
            assert set(record) == {"id", "width", "height", "file_name"}, name
            assert record["file_name"].startswith("images/") and record["file_name"].endswith(".jpg")
            image = Image.open(io.BytesIO(ds.images[record["file_name"]]))
            assert image.format == "JPEG" and image.mode == "RGB"
            assert image.size == (record["width"], record["height"]), f"{name}: {record['file_name']}"


@pytest.mark.parametrize("name", ["sample-shapes", "sample-shapes-multilabel", "sample-objects"])
@pytest.mark.parametrize("purpose", [Purpose.TRAINING, Purpose.EVALUATION])
def test_the_official_checker_accepts_each_split(samples, name, purpose):
    """The retired service's own checker, given the absolute URLs the blob path resolves to."""
    for ds in (samples[name], samples[name + "-test"]):
        coco = json.loads(ds.files()["annotations.json"])
        for record in coco["images"]:
            url = f"https://acct.blob.core.windows.net/datasets/{ds.name}/{record['file_name']}"
            record["absolute_url"] = url
        check_coco_annotation_file(coco, ds.kind.value, purpose)  # raises ValueError when wrong


def test_classification_has_one_label_per_image_and_balanced_classes(samples):
    for name, per_class in (("sample-shapes", 5), ("sample-shapes-test", 10)):
        coco = samples[name].coco
        assert [c["name"] for c in coco["categories"]] == list(CLASSIFICATION_KINDS)
        assert Counter(a["image_id"] for a in coco["annotations"]) == {i["id"]: 1 for i in coco["images"]}
        assert Counter(a["category_id"] for a in coco["annotations"]) == {
            c + 1: per_class for c in range(len(CLASSIFICATION_KINDS))}
        assert all("bbox" not in a for a in coco["annotations"])


def test_multilabel_holds_one_to_three_distinct_kinds_per_image(samples):
    for name in ("sample-shapes-multilabel", "sample-shapes-multilabel-test"):
        coco = samples[name].coco
        per_image: dict[int, list[int]] = {}
        for a in coco["annotations"]:
            assert "bbox" not in a
            per_image.setdefault(a["image_id"], []).append(a["category_id"])
        assert set(per_image) == {i["id"] for i in coco["images"]}
        assert all(1 <= len(c) <= 3 and len(set(c)) == len(c) for c in per_image.values()), name
        assert Counter(len(c) for c in per_image.values()).keys() == {1, 2, 3}, "all set sizes occur"
        counts = Counter(c for cats in per_image.values() for c in cats)
        assert min(counts.values()) >= len(coco["images"]) // len(CLASSIFICATION_KINDS)


def test_detection_boxes_are_relative_and_inside_the_image(samples):
    for name, min_per_class in (("sample-objects", 5), ("sample-objects-test", 1)):
        coco = samples[name].coco
        assert [c["name"] for c in coco["categories"]] == list(DETECTION_KINDS)
        per_image = Counter(a["image_id"] for a in coco["annotations"])
        assert set(per_image) == {i["id"] for i in coco["images"]}
        assert set(per_image.values()) <= {1, 2, 3, 4}
        assert min(Counter(a["category_id"] for a in coco["annotations"]).values()) >= min_per_class
        for a in coco["annotations"]:
            left, top, width, height = a["bbox"]
            assert 0 <= left < 1 and 0 <= top < 1 and 0 < width <= 1 and 0 < height <= 1, a
            assert left + width <= 1 and top + height <= 1, a


def test_relative_boxes_stay_inside_even_at_the_far_edge():
    # 7 / 9 + 2 / 9 rounds above 1 in floating point without the guard
    for w in range(50, 700):
        for left in (0, 1, w // 3, w - 7, w - 1):
            box = _relative_box((left, left, w, w), w, w)
            assert box[0] + box[2] <= 1.0 and box[1] + box[3] <= 1.0, (w, left, box)
            assert abs(box[0] + box[2] - 1.0) < 2e-6


def test_smaller_splits_are_prefixes_of_bigger_ones():
    """2 shots per class are the first 2 of 5, so few-shot curves compare like with like."""
    two, five = classification("train", per_class=2), classification("train", per_class=5)
    for record in two.coco["images"]:
        assert two.images[record["file_name"]] == five.images[record["file_name"]]
    assert two.coco["annotations"] == five.coco["annotations"][: len(two.coco["annotations"])]


def test_bad_arguments_are_refused_with_the_argument_named():
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        classification("train", seed=-1)
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        detection("val")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="per_class must be a positive integer, got 0"):
        classification("test", per_class=0)
    with pytest.raises(ValueError, match="count must be a positive integer, got 2.5"):
        multilabel("train", count=2.5)  # type: ignore[arg-type]
