"""validate_coco beyond the corpus: capping, limits, URL policy, inference, robustness, and agreement
with the official checker (whatever it rejects, Loupe rejects too)."""

from __future__ import annotations

import contextlib
import copy
import gc
import io
import json
import random
from typing import Any

import pytest

from loupe.coco import (
    MAX_COCO_BYTES,
    IssueCollector,
    Purpose,
    parse_and_validate,
    validate_coco,
)
from loupe.enums import AnnotationKind
from tests.coco.corpus import classification_doc, detection_doc

CLS, DET = AnnotationKind.CLASSIFICATION, AnnotationKind.DETECTION
TRAIN, EVAL = Purpose.TRAINING, Purpose.EVALUATION


def dumps(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def codes(report) -> set[str]:
    return {i.code for i in report.errors}


# ----------------------------------------------------------------------------- capping


def test_a_million_style_flood_is_counted_in_full_and_listed_briefly():
    doc = detection_doc()
    doc["annotations"] = [
        {"id": k, "image_id": 1 + k % 3, "category_id": 1 + k % 2, "bbox": [0.5, 0.5, 0.9, 0.1]}
        for k in range(1, 5001)
    ]
    report = validate_coco(dumps(doc), purpose=TRAIN)
    assert report.error_count == 5000 + 3  # and each image has over 1000 regions
    assert [i.target for i in report.errors if i.code == "TooManyRegions"] == [
        "images[0]",
        "images[1]",
        "images[2]",
    ]
    boxes = [i for i in report.errors if i.code == "InvalidBoundingBox"]
    assert len(boxes) == 11  # ten listed, then the summary line
    assert boxes[-1].message == "... and 4990 more InvalidBoundingBox errors" and boxes[-1].target == ""
    assert (
        boxes[0].target == "annotations[0].bbox"
        and "left + width must be <= 1, found 1.4" in boxes[0].message
    )


def test_the_collector_caps_the_total_and_each_code():
    collector = IssueCollector("error", max_listed=5, max_per_code=2)
    for k in range(4):
        collector.add("A", f"a[{k}]", "a")
    for code in "BCDE":
        collector.add(code, "", code)
    collector.count("F", 3)
    issues = collector.issues()
    assert collector.total == 4 + 4 + 3
    assert [i.code for i in issues[:5]] == ["A", "A", "B", "C", "D"]
    summaries = {i.code: i.message for i in issues[5:]}
    assert summaries == {
        "A": "... and 2 more A errors",
        "E": "... and 1 more E error",
        "F": "... and 3 more F errors",
    }


# ----------------------------------------------------------------------------- limits


def test_file_size_limit():
    data = dumps(classification_doc())
    report = validate_coco(data, purpose=TRAIN, max_bytes=len(data) - 1)
    assert [(i.code, i.target) for i in report.errors] == [("FileTooLarge", "")]
    assert "limit" in report.errors[0].message
    assert MAX_COCO_BYTES == 512 * 1024 * 1024
    assert validate_coco(data, purpose=TRAIN, max_bytes=len(data)).ok


def test_value_count_limit_guards_memory(monkeypatch):
    from loupe.coco import parsing

    monkeypatch.setattr(parsing, "MAX_JSON_VALUES", 100)
    small = dumps(classification_doc())  # ~40 values
    assert validate_coco(small, purpose=TRAIN).ok
    hostile = b"[" + b"[]," * 200 + b"[]]"  # 603 bytes: 1 + 201 opening brackets, 200 commas
    report = validate_coco(hostile, purpose=TRAIN)
    assert [(i.code, i.target) for i in report.errors] == [("FileTooComplex", "")]
    assert "402 JSON values" in report.errors[0].message


def test_too_many_images_for_evaluation():
    n = 100_001
    images = ",".join(f'{{"id":{i},"width":64,"height":64,"file_name":"i/{i}.jpg"}}' for i in range(1, n + 1))
    annotations = ",".join(f'{{"id":{i},"image_id":{i},"category_id":{1 + i % 2}}}' for i in range(1, n + 1))
    data = (
        f'{{"images":[{images}],"annotations":[{annotations}],"categories":[{{"id":1,"name":"a"}},'
        f'{{"id":2,"name":"b"}}]}}'.encode()
    )
    report = validate_coco(data, purpose=EVAL)
    assert [(i.code, i.target) for i in report.errors] == [("TooManyImages", "images")]
    assert "100001" in report.errors[0].message and "100000" in report.errors[0].message
    assert validate_coco(data, purpose=TRAIN).ok  # classification training allows a million
    assert len(validate_coco(data, purpose=TRAIN).images) == n


def test_box_edges_allow_rounding_noise_only():
    doc = detection_doc()
    doc["annotations"][0]["bbox"] = [0.5, 0.0, 0.5000005, 1.0]  # 6-decimal rounding overshoot
    assert validate_coco(dumps(doc), purpose=TRAIN).ok
    doc["annotations"][0]["bbox"] = [0.5, 0.0, 0.50001, 1.0]
    assert codes(validate_coco(dumps(doc), purpose=TRAIN)) == {"InvalidBoundingBox"}


def test_integral_float_dimensions_pass_like_the_official_checker():
    doc = classification_doc()
    doc["images"][0]["width"] = 32.0
    report = validate_coco(dumps(doc), purpose=TRAIN)
    assert report.ok and report.images[0].width == 32 and type(report.images[0].width) is int
    doc["images"][0]["width"] = 32.5
    assert codes(validate_coco(dumps(doc), purpose=TRAIN)) == {"InvalidType"}


def test_evaluation_accepts_small_images_training_rejects_tiny_ones():
    doc = classification_doc()
    for image in doc["images"]:
        image["width"] = image["height"] = 32  # CIFAR-sized test sets evaluate fine
    assert validate_coco(dumps(doc), purpose=EVAL).ok
    doc["images"][0]["width"] = 9
    assert codes(validate_coco(dumps(doc), purpose=TRAIN)) == {"InvalidImageDimension"}
    doc["images"][0]["width"] = 12000
    assert codes(validate_coco(dumps(doc), purpose=TRAIN)) == {"InvalidImageDimension"}
    assert validate_coco(dumps(doc), purpose=EVAL).ok  # evaluation allows up to 16000


# ----------------------------------------------------------------------------- inputs


def test_bom_str_and_bytearray_inputs():
    data = dumps(classification_doc())
    assert validate_coco(b"\xef\xbb\xbf" + data, purpose=TRAIN).ok
    assert validate_coco(data.decode(), purpose=TRAIN).ok
    assert validate_coco(bytearray(data), purpose=TRAIN).ok
    assert validate_coco(memoryview(data), purpose=TRAIN).ok


def test_parse_and_validate_hands_back_the_document_only_when_valid():
    doc = detection_doc()
    report, parsed = parse_and_validate(dumps(doc), purpose=TRAIN, expected_kind=DET)
    assert report.ok and parsed == doc
    doc["annotations"][0]["image_id"] = 99
    report, parsed = parse_and_validate(dumps(doc), purpose=TRAIN, expected_kind=DET)
    assert not report.ok and parsed is None


def test_kind_is_declared_or_inferred():
    assert validate_coco(dumps(detection_doc()), purpose=TRAIN).annotation_kind is DET
    assert validate_coco(dumps(classification_doc()), purpose=TRAIN).annotation_kind is CLS
    report = validate_coco(dumps(classification_doc()), purpose=TRAIN, expected_kind=DET)
    assert report.annotation_kind is DET and codes(report) == {"AnnotationKindMismatch"}
    empty = classification_doc()
    empty["annotations"] = []
    assert validate_coco(dumps(empty), purpose=TRAIN).annotation_kind is None


def test_detection_images_with_two_categories_are_not_multilabel():
    report = validate_coco(dumps(detection_doc()), purpose=TRAIN)
    assert report.ok and not report.multilabel  # image 1 has a fork and scissors


def test_null_bbox_counts_as_no_box():
    doc = classification_doc()
    for annotation in doc["annotations"]:
        annotation["bbox"] = None
    report = validate_coco(dumps(doc), purpose=TRAIN)
    assert report.ok and report.annotation_kind is CLS


# ----------------------------------------------------------------------------- image locations


def with_urls(urls: list[dict[str, Any]]) -> bytes:
    doc = classification_doc()
    for image, extra in zip(doc["images"], urls, strict=False):
        image.update(extra)
    return dumps(doc)


def test_url_policy_is_asked_once_per_origin():
    asked: list[str] = []

    def allowed(url: str) -> bool:
        asked.append(url)
        return "good.example" in url

    data = with_urls(
        [
            {"absolute_url": "https://good.example/c/1.png"},
            {"absolute_url": "https://good.example/c/2.png"},
            {"coco_url": "https://bad.example/c/3.png"},
            {"coco_url": "https://bad.example/c/4.png"},
        ]
    )
    report = validate_coco(data, purpose=TRAIN, url_allowed=allowed)
    assert asked == ["https://good.example/c/1.png", "https://bad.example/c/3.png"]
    assert [(i.code, i.target) for i in report.errors] == [
        ("ForeignImageHost", "images[2].coco_url"),
        ("ForeignImageHost", "images[3].coco_url"),
    ]
    assert "bad.example" in report.errors[0].message
    assert [(e.index, e.url) for e in report.images] == [
        (0, "https://good.example/c/1.png"),
        (1, "https://good.example/c/2.png"),
    ]


def test_urls_without_a_policy_and_unusual_forms():
    data = with_urls(
        [
            {"absolute_url": "HTTPS://Account.Blob.Core.Windows.Net/c/1.png?sv=2022&sig=x%2F"},
            {
                "absolute_url": "http://127.0.0.1:10000/devstoreaccount1/c/2.png",
                "coco_url": "https://x/2.png",
            },
            {"coco_url": "https://bücher.example/3.png"},
            {"absolute_url": None, "coco_url": "https://x.example/4.png"},
        ]
    )
    report = validate_coco(data, purpose=TRAIN)
    assert report.ok, report.errors
    assert [e.url for e in report.images] == [
        "HTTPS://Account.Blob.Core.Windows.Net/c/1.png?sv=2022&sig=x%2F",
        "http://127.0.0.1:10000/devstoreaccount1/c/2.png",
        "https://bücher.example/3.png",
        "https://x.example/4.png",
    ]


@pytest.mark.parametrize(
    "url",
    [
        "https://",
        "https:///c/1.png",
        "http://host:99999/a.png",
        "https://a b/c.png",
        "javascript:alert(1)",
        "//host/a.png",
        "https://[::1/a.png",
        "https://h/a\\b.png",
        "https://h/a\nb.png",
        12,
    ],
)
def test_bad_urls(url):
    report = validate_coco(with_urls([{"absolute_url": url}]), purpose=TRAIN)
    assert [(i.code, i.target) for i in report.errors] in (
        [("InvalidUrl", "images[0].absolute_url")],
        [("InvalidType", "images[0].absolute_url")],
    )
    assert [e.index for e in report.images] == [1, 2, 3]  # never fetched


def test_a_failing_policy_refuses():
    def broken(url: str) -> bool:
        raise RuntimeError("policy down")

    report = validate_coco(
        with_urls([{"absolute_url": "https://h.example/1.png"}]), purpose=TRAIN, url_allowed=broken
    )
    assert codes(report) == {"ForeignImageHost"}


@pytest.mark.parametrize(
    "name",
    [
        "images/ok name (1).png",
        "a/b/c/d.png",
        "shots/12:30.png",
        "fotos/árbol.png",
        ".hidden/x.png",
        "x..y.png",
    ],
)
def test_unusual_but_safe_file_names(name):
    doc = classification_doc()
    doc["images"][0]["file_name"] = name
    report = validate_coco(dumps(doc), purpose=TRAIN)
    assert report.ok, report.errors
    assert report.images[0].file_name == name


@pytest.mark.parametrize(
    "name",
    [
        "a//b.png",
        "a/./b.png",
        "a/../b.png",
        "images/",
        "C:/x.png",
        "C:\\x.png",
        "\\\\server\\share\\x.png",
        "https://h/x.png",
        "a\tb.png",
        "x" * 1025,
        7,
        None,
    ],
)
def test_unsafe_file_names(name):
    doc = classification_doc()
    doc["images"][0]["file_name"] = name
    report = validate_coco(dumps(doc), purpose=TRAIN)
    assert [i.target for i in report.errors] == ["images[0].file_name"]
    assert [e.index for e in report.images] == [1, 2, 3]


# ----------------------------------------------------------------------------- robustness


def test_gc_state_is_restored():
    data = dumps(classification_doc())
    assert gc.isenabled()
    validate_coco(data, purpose=TRAIN)
    validate_coco(b"{broken", purpose=TRAIN)
    assert gc.isenabled()
    gc.disable()
    try:
        validate_coco(data, purpose=TRAIN)
        assert not gc.isenabled()
    finally:
        gc.enable()


HOSTILE = [
    None,
    True,
    False,
    0,
    -1,
    2**70,
    1e308,
    -0.0,
    0.5,
    "",
    "x",
    "1",
    [],
    [1, 2],
    [[[]]],
    {},
    {"id": 1},
    "images/../x",
    [0.1, 0.1, 0.1, 0.1],
    10_000_000,
]


def mutate(doc: dict[str, Any], rng: random.Random) -> Any:
    """Sets, deletes or duplicates one random node."""
    doc = copy.deepcopy(doc)
    if rng.random() < 0.05:
        return rng.choice(HOSTILE)
    section = rng.choice(["images", "annotations", "categories", "info"])
    if section == "info" or rng.random() < 0.08:
        doc[section] = rng.choice(HOSTILE) if rng.random() < 0.8 else doc.pop(section, None)
        return doc
    items = doc[section]
    k = rng.randrange(len(items))
    roll = rng.random()
    if roll < 0.1:
        items[k] = rng.choice(HOSTILE)
    elif roll < 0.2:
        items.append(copy.deepcopy(items[k]))
    else:
        field = rng.choice(sorted(items[k]) + ["bbox", "absolute_url", "coco_url"])
        if rng.random() < 0.15:
            items[k].pop(field, None)
        elif field == "bbox" and rng.random() < 0.5:
            box = list(items[k].get("bbox") or [0.1, 0.1, 0.2, 0.2])
            box[rng.randrange(4)] = rng.choice(HOSTILE)
            items[k]["bbox"] = box
        else:
            items[k][field] = rng.choice(HOSTILE)
    return doc


def test_random_mutations_never_raise_and_never_hit_the_safety_net():
    rng = random.Random(7)
    bases = [classification_doc(), detection_doc()]
    for round_ in range(400):
        doc = mutate(rng.choice(bases), rng)
        data = json.dumps(doc).encode()
        if round_ % 5 == 0:  # byte-level damage too
            cut = rng.randrange(len(data) + 1)
            data = data[:cut] + bytes([rng.randrange(256)]) + data[cut + 1 :]
        for purpose in (TRAIN, EVAL):
            for kind in (None, CLS, DET):
                report = validate_coco(data, purpose=purpose, expected_kind=kind)
                assert "InternalValidationError" not in codes(report), (doc, report.errors)
                assert report.error_count >= len(
                    [i for i in report.errors if not i.message.startswith("...")]
                )


# ----------------------------------------------------------------------------- official checker


def official_rejects(doc: Any, kind: AnnotationKind) -> bool:
    from cognitive_service_vision_model_customization_python_samples import AnnotationKind as OfficialKind
    from cognitive_service_vision_model_customization_python_samples.data import (
        check_coco_annotations as official,
    )

    official_kind = OfficialKind.OBJECT_DETECTION if kind is DET else OfficialKind.MULTICLASS_CLASSIFICATION
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            official.check_coco_annotation_file(doc, official_kind, official.Purpose.TRAINING)
    except Exception:
        return True
    return False


def with_official_urls(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for image in doc["images"]:
        image["absolute_url"] = f"https://account.blob.core.windows.net/c/{image['file_name']}"
    return doc


def relies_on_relative_names(doc: Any) -> bool:
    """Loupe's one deliberate relaxation in these mutations: an image may have only a relative file_name."""
    images = doc.get("images") if isinstance(doc, dict) else None
    return isinstance(images, list) and any(
        isinstance(i, dict) and "absolute_url" not in i and "coco_url" not in i for i in images
    )


def test_what_the_official_checker_rejects_loupe_rejects():
    rng = random.Random(11)
    bases = [(with_official_urls(classification_doc()), CLS), (with_official_urls(detection_doc()), DET)]
    for doc, kind in bases:
        assert not official_rejects(doc, kind)
        assert validate_coco(dumps(doc), purpose=TRAIN, expected_kind=kind).ok
    rejected = 0
    for _ in range(400):
        base, kind = rng.choice(bases)
        doc = mutate(base, rng)
        if not official_rejects(copy.deepcopy(doc), kind) or relies_on_relative_names(doc):
            continue
        rejected += 1
        report = validate_coco(dumps(doc), purpose=TRAIN, expected_kind=kind)
        assert not report.ok, f"the official checker rejects this, Loupe accepts it: {doc}"
    assert rejected > 150  # the mutations do exercise the checker
