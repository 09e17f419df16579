"""Malformed (and valid) COCO datasets, as data, so that the very same cases can be replayed
through any entry point: loupe.coco directly (tests/coco/test_corpus.py), the HTTP API, or a blob
drop into Azurite.

Each case is a dataset folder: ``files`` maps paths relative to the folder to bytes, the COCO file
at ``ANNOTATIONS`` and its images beside it (``file_name`` is relative to the COCO file's folder).
Images are drawn with Pillow here; no third-party file is used. Case names are valid dataset names.

``stage`` says where the problem is caught: "structure" (validate_coco's report) or "images"
(check_images, the structure being valid). ``expect`` lists (code, target) pairs that must be among
the errors; a target matches itself and anything below it ("images[1]" matches "images[1].id",
not "images[10]"); "" is the file itself.
"""

from __future__ import annotations

import copy
import io
import json
import random
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from PIL import Image

from loupe.coco import Purpose
from loupe.enums import AnnotationKind

ANNOTATIONS = "annotations.json"
# Hosts the corpus treats as Loupe's own storage (an Azurite blob endpoint is on loopback);
# the foreign-host cases point elsewhere, so any sane policy refuses them.
ALLOWED_HOSTS = frozenset({"127.0.0.1", "localhost", "loupetest.blob.core.windows.net"})

CLS = AnnotationKind.CLASSIFICATION
DET = AnnotationKind.DETECTION
TRAIN = Purpose.TRAINING
EVAL = Purpose.EVALUATION


def url_allowed(url: str) -> bool:
    return urlsplit(url).hostname in ALLOWED_HOSTS


@dataclass(frozen=True)
class CorpusCase:
    name: str
    files: dict[str, bytes]
    purpose: Purpose
    expected_kind: AnnotationKind | None
    expect: tuple[tuple[str, str], ...] = ()  # (code, target) among the errors
    expect_warnings: tuple[tuple[str, str], ...] = ()
    stage: Literal["structure", "images"] = "structure"
    note: str = ""


@dataclass(frozen=True)
class ValidCase:
    name: str
    files: dict[str, bytes]
    purpose: Purpose
    expected_kind: AnnotationKind | None
    kind: AnnotationKind  # what the report must say
    multilabel: bool
    counts: tuple[int, int, int]  # images, annotations, categories
    categories: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (images, annotations)


# ----------------------------------------------------------------------------- images


def png(width: int = 32, height: int = 32, color: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def jpeg(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    """A noisy JPEG: most of the file is entropy-coded data, so a cut lands in the pixels."""
    buf = io.BytesIO()
    noise = random.Random(seed).randbytes(width * height * 3)
    Image.frombytes("RGB", (width, height), noise).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A valid PNG header declaring a huge canvas, with a few bytes of data: nothing is allocated."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
)
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="32" height="32">'
    b'<rect width="32" height="32" fill="red"/></svg>'
)


# ----------------------------------------------------------------------------- documents


def classification_doc(per_category: int = 2, names: tuple[str, ...] = ("cat", "dog")) -> dict[str, Any]:
    """Multiclass: ``per_category`` images per category, one label each, 32x32 PNGs."""
    images, annotations = [], []
    for c in range(len(names)):
        for _ in range(per_category):
            i = len(images) + 1
            images.append({"id": i, "width": 32, "height": 32, "file_name": f"images/{i}.png"})
            annotations.append({"id": i, "image_id": i, "category_id": c + 1})
    return {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c + 1, "name": n} for c, n in enumerate(names)],
    }


def detection_doc() -> dict[str, Any]:
    """Three 64x48 JPEGs with two categories and four boxes."""
    images = [{"id": i, "width": 64, "height": 48, "file_name": f"images/{i}.jpg"} for i in (1, 2, 3)]
    boxes = [
        (1, 1, [0.1, 0.1, 0.4, 0.5]),
        (1, 2, [0.5, 0.4, 0.5, 0.6]),
        (2, 1, [0.0, 0.0, 1.0, 1.0]),
        (3, 2, [0.25, 0.25, 0.5, 0.5]),
    ]
    annotations = [
        {"id": k + 1, "image_id": img, "category_id": cat, "bbox": box}
        for k, (img, cat, box) in enumerate(boxes)
    ]
    return {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "fork"}, {"id": 2, "name": "scissors"}],
    }


def files_for(doc: Any, images: dict[str, bytes] | None = None, *, draw: bool = True) -> dict[str, bytes]:
    """The COCO file plus an image for every plain relative ``file_name`` (unless overridden)."""
    files: dict[str, bytes] = {}
    if draw and isinstance(doc, dict) and isinstance(doc.get("images"), list):
        for k, image in enumerate(doc["images"]):
            name = image.get("file_name") if isinstance(image, dict) else None
            if not (
                isinstance(name, str)
                and name
                and not name.startswith(("/", "."))
                and "\\" not in name
                and ".." not in name
                and ":" not in name
                and "\x00" not in name
            ):
                continue
            w, h = image.get("width"), image.get("height")
            ok = type(w) is int and type(h) is int and 10 <= w <= 1024 and 10 <= h <= 1024
            size = (w, h) if ok else (32, 32)
            files[name] = jpeg(*size) if name.endswith(".jpg") else png(*size, color=(40 * (k % 6), 120, 200))
    files.update(images or {})
    files[ANNOTATIONS] = json.dumps(doc).encode() if not isinstance(doc, bytes) else doc
    return files


def _mutated(base: dict[str, Any], *edits: tuple[tuple[Any, ...], Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with each (path, value) set; ``DELETE`` removes the key, and an index
    one past the end of a list appends."""
    doc = copy.deepcopy(base)
    for path, value in edits:
        node = doc
        for key in path[:-1]:
            node = node[key]
        if value is DELETE:
            del node[path[-1]]
        elif isinstance(node, list) and path[-1] == len(node):
            node.append(value)
        else:
            node[path[-1]] = value
    return doc


DELETE = object()


def _cls(*edits: tuple[tuple[Any, ...], Any], per_category: int = 2) -> dict[str, Any]:
    return _mutated(classification_doc(per_category), *edits)


def _det(*edits: tuple[tuple[Any, ...], Any]) -> dict[str, Any]:
    return _mutated(detection_doc(), *edits)


def _with_image(doc: dict[str, Any], index: int, data: bytes) -> dict[str, bytes]:
    return files_for(doc, {doc["images"][index]["file_name"]: data})


def _many_categories(n: int) -> dict[str, Any]:
    doc = classification_doc()
    doc["categories"] += [{"id": c, "name": f"class-{c}"} for c in range(3, n + 1)]
    return doc


def _many_regions(n: int) -> dict[str, Any]:
    doc = detection_doc()
    doc["annotations"] += [
        {"id": len(doc["annotations"]) + k + 1, "image_id": 1, "category_id": 1, "bbox": [0.1, 0.1, 0.2, 0.2]}
        for k in range(n)
    ]
    return doc


def _cases() -> list[CorpusCase]:
    valid_jpeg = jpeg(64, 48)
    cls, det = classification_doc(), detection_doc()
    c = CorpusCase
    return [
        # --- the file itself
        c(
            "invalid-json",
            files_for(b'{"images": [{"id": 1,', draw=False),
            TRAIN,
            None,
            (("InvalidJson", ""),),
        ),
        c(
            "trailing-comma",
            files_for(b'{"images": [], "annotations": [], "categories": [],}', draw=False),
            TRAIN,
            None,
            (("InvalidJson", ""),),
        ),
        c("empty-file", files_for(b"", draw=False), TRAIN, None, (("EmptyFile", ""),)),
        c("whitespace-only", files_for(b" \n\t\n", draw=False), TRAIN, None, (("EmptyFile", ""),)),
        c(
            "not-utf8",
            files_for(
                json.dumps(cls).replace('"dog"', '"chien-\\u00e9"').encode().replace(b"\\u00e9", b"\xe9"),
                draw=False,
            ),
            TRAIN,
            None,
            (("NotUtf8", ""),),
            note="a Latin-1 byte in a category name",
        ),
        c("utf16", files_for(json.dumps(cls).encode("utf-16"), draw=False), TRAIN, None, (("NotUtf8", ""),)),
        c(
            "deeply-nested",
            files_for(b"[" * 100_000 + b"]" * 100_000, draw=False),
            TRAIN,
            None,
            (("JsonTooDeep", ""),),
        ),
        c(
            "nan-in-bbox",
            files_for(json.dumps(det).replace("0.4, 0.5]", "NaN, 0.5]").encode(), draw=False),
            TRAIN,
            None,
            (("InvalidJson", ""),),
            note="Python's json.dump writes NaN, which JSON does not have",
        ),
        c("top-level-array", files_for(b"[]", draw=False), TRAIN, None, (("NotAnObject", ""),)),
        c("top-level-string", files_for(b'"annotations"', draw=False), TRAIN, None, (("NotAnObject", ""),)),
        # --- sections
        c(
            "missing-images",
            files_for(_cls((("images",), DELETE))),
            TRAIN,
            None,
            (("MissingField", "images"),),
        ),
        c(
            "null-annotations",
            files_for(_cls((("annotations",), None))),
            TRAIN,
            None,
            (("NullField", "annotations"),),
        ),
        c(
            "categories-not-a-list",
            files_for(_cls((("categories",), {"id": 1, "name": "cat"}))),
            TRAIN,
            None,
            (("InvalidType", "categories"),),
        ),
        c(
            "image-not-an-object",
            files_for(_cls((("images", 1), "images/2.png"))),
            TRAIN,
            None,
            (("InvalidType", "images[1]"),),
        ),
        c(
            "annotation-not-an-object",
            files_for(_cls((("annotations", 2), [3, 3, 2]))),
            TRAIN,
            None,
            (("InvalidType", "annotations[2]"),),
        ),
        c(
            "no-images",
            files_for(_cls((("images",), []))),
            TRAIN,
            None,
            (("NoImages", "images"), ("UnknownImageId", "annotations[0].image_id")),
        ),
        c(
            "no-annotations",
            files_for(_cls((("annotations",), []))),
            TRAIN,
            None,
            (("NoAnnotations", "annotations"),),
        ),
        # --- types, missing and null fields
        c(
            "bool-image-id",
            files_for(_cls((("images", 0, "id"), True))),
            TRAIN,
            None,
            (("InvalidType", "images[0].id"), ("UnknownImageId", "annotations[0].image_id")),
        ),
        c(
            "string-category-id",
            files_for(_cls((("annotations", 0, "category_id"), "1"))),
            TRAIN,
            None,
            (("InvalidType", "annotations[0].category_id"),),
        ),
        c(
            "float-annotation-id",
            files_for(_cls((("annotations", 0, "id"), 1.0))),
            TRAIN,
            None,
            (("InvalidType", "annotations[0].id"),),
        ),
        c(
            "missing-file-name",
            files_for(_cls((("images", 0, "file_name"), DELETE))),
            TRAIN,
            None,
            (("MissingField", "images[0].file_name"),),
        ),
        c(
            "null-width",
            files_for(_cls((("images", 0, "width"), None))),
            TRAIN,
            None,
            (("NullField", "images[0].width"),),
        ),
        c(
            "string-height",
            files_for(_cls((("images", 2, "height"), "32"))),
            TRAIN,
            None,
            (("InvalidType", "images[2].height"),),
        ),
        c(
            "missing-image-id-ref",
            files_for(_cls((("annotations", 1, "image_id"), DELETE))),
            TRAIN,
            None,
            (("MissingField", "annotations[1].image_id"),),
        ),
        # --- ids and references
        c(
            "duplicate-image-id",
            files_for(_cls((("images", 1, "id"), 1))),
            TRAIN,
            None,
            (("DuplicateId", "images[1].id"),),
        ),
        c(
            "duplicate-annotation-id",
            files_for(_cls((("annotations", 1, "id"), 1))),
            TRAIN,
            None,
            (("DuplicateId", "annotations[1].id"),),
        ),
        c(
            "non-contiguous-category-ids",
            files_for(
                _cls(
                    (("categories", 1, "id"), 3),
                    (("annotations", 2, "category_id"), 3),
                    (("annotations", 3, "category_id"), 3),
                )
            ),
            TRAIN,
            None,
            (("IdOutOfRange", "categories[1].id"), ("UnknownCategoryId", "annotations[2].category_id")),
        ),
        c(
            "zero-image-id",
            files_for(_cls((("images", 0, "id"), 0))),
            TRAIN,
            None,
            (("IdOutOfRange", "images[0].id"),),
        ),
        c(
            "dangling-image-id",
            files_for(_cls((("annotations", 0, "image_id"), 17))),
            TRAIN,
            None,
            (("UnknownImageId", "annotations[0].image_id"),),
        ),
        c(
            "dangling-category-id",
            files_for(_cls((("annotations", 3, "category_id"), 9))),
            TRAIN,
            None,
            (("UnknownCategoryId", "annotations[3].category_id"),),
        ),
        # --- boxes
        c(
            "bbox-past-right-edge",
            files_for(_det((("annotations", 0, "bbox"), [0.8, 0.1, 0.5, 0.2]))),
            TRAIN,
            None,
            (("InvalidBoundingBox", "annotations[0].bbox"),),
        ),
        c(
            "bbox-zero-area",
            files_for(_det((("annotations", 1, "bbox"), [0.1, 0.1, 0.0, 0.2]))),
            TRAIN,
            None,
            (("InvalidBoundingBox", "annotations[1].bbox[2]"),),
        ),
        c(
            "bbox-negative-left",
            files_for(_det((("annotations", 0, "bbox"), [-0.1, 0.1, 0.5, 0.2]))),
            TRAIN,
            None,
            (("InvalidBoundingBox", "annotations[0].bbox[0]"),),
        ),
        c(
            "bbox-three-numbers",
            files_for(_det((("annotations", 0, "bbox"), [0.1, 0.1, 0.5]))),
            TRAIN,
            None,
            (("InvalidBoundingBox", "annotations[0].bbox"),),
        ),
        c(
            "bbox-string-value",
            files_for(_det((("annotations", 2, "bbox"), [0.1, "0.1", 0.5, 0.2]))),
            TRAIN,
            None,
            (("InvalidBoundingBox", "annotations[2].bbox[1]"),),
        ),
        c(
            "bbox-bool-value",
            files_for(_det((("annotations", 2, "bbox"), [0.1, 0.1, True, 0.2]))),
            TRAIN,
            None,
            (("InvalidBoundingBox", "annotations[2].bbox[2]"),),
        ),
        c(
            "bbox-in-pixels",
            files_for(_det((("annotations", 3, "bbox"), [12, 8, 30, 20]))),
            TRAIN,
            None,
            (("InvalidBoundingBox", "annotations[3].bbox[0]"),),
        ),
        c(
            "bbox-not-a-list",
            files_for(_det((("annotations", 3, "bbox"), {"x": 0.1}))),
            TRAIN,
            None,
            (("InvalidBoundingBox", "annotations[3].bbox"),),
        ),
        c(
            "detection-annotation-without-bbox",
            files_for(_det((("annotations", 1, "bbox"), DELETE))),
            TRAIN,
            None,
            (("MissingField", "annotations[1].bbox"),),
        ),
        c("too-many-regions", files_for(_many_regions(1001)), TRAIN, DET, (("TooManyRegions", "images[0]"),)),
        # --- image fields
        c(
            "width-too-small",
            files_for(_cls((("images", 0, "width"), 5))),
            TRAIN,
            None,
            (("InvalidImageDimension", "images[0].width"),),
        ),
        c(
            "height-too-large",
            files_for(_cls((("images", 1, "height"), 20000))),
            TRAIN,
            None,
            (("InvalidImageDimension", "images[1].height"),),
        ),
        c(
            "empty-category-name",
            files_for(_cls((("categories", 0, "name"), "  "))),
            TRAIN,
            None,
            (("InvalidCategoryName", "categories[0].name"),),
        ),
        c(
            "path-traversal",
            files_for(_cls((("images", 0, "file_name"), "../../secrets/key.png"))),
            TRAIN,
            None,
            (("InvalidFileName", "images[0].file_name"),),
        ),
        c(
            "absolute-path",
            files_for(_cls((("images", 0, "file_name"), "/etc/passwd"))),
            TRAIN,
            None,
            (("InvalidFileName", "images[0].file_name"),),
        ),
        c(
            "backslash-path",
            files_for(_cls((("images", 1, "file_name"), "images\\2.png"))),
            TRAIN,
            None,
            (("InvalidFileName", "images[1].file_name"),),
        ),
        c(
            "nul-in-file-name",
            files_for(_cls((("images", 1, "file_name"), "images/2.png\x00.jpg"))),
            TRAIN,
            None,
            (("InvalidFileName", "images[1].file_name"),),
        ),
        c(
            "url-in-file-name",
            files_for(_cls((("images", 0, "file_name"), "file:///etc/passwd"))),
            TRAIN,
            None,
            (("InvalidFileName", "images[0].file_name"),),
        ),
        c(
            "empty-file-name",
            files_for(_cls((("images", 0, "file_name"), ""))),
            TRAIN,
            None,
            (("InvalidFileName", "images[0].file_name"),),
        ),
        c(
            "foreign-image-host",
            files_for(_cls((("images", 0, "absolute_url"), "https://images.attacker.example/1.png"))),
            TRAIN,
            None,
            (("ForeignImageHost", "images[0].absolute_url"),),
        ),
        c(
            "metadata-endpoint-url",
            files_for(_cls((("images", 0, "coco_url"), "http://169.254.169.254/latest/meta-data"))),
            TRAIN,
            None,
            (("ForeignImageHost", "images[0].coco_url"),),
            note="SSRF towards a cloud metadata service",
        ),
        c(
            "non-http-url",
            files_for(_cls((("images", 0, "coco_url"), "ftp://127.0.0.1/images/1.png"))),
            TRAIN,
            None,
            (("InvalidUrl", "images[0].coco_url"),),
        ),
        c(
            "url-with-credentials",
            files_for(_cls((("images", 0, "absolute_url"), "https://user:pw@127.0.0.1/1.png"))),
            TRAIN,
            None,
            (("InvalidUrl", "images[0].absolute_url"),),
        ),
        # --- quotas and kinds
        c(
            "too-few-images-per-category",
            files_for(_cls((("annotations", 3, "category_id"), 1))),
            TRAIN,
            None,
            (("TooFewImagesPerCategory", "categories[1]"),),
            note="classification training needs 2 images per class",
        ),
        c(
            "category-without-images",
            files_for(_cls((("categories", 2), {"id": 3, "name": "bird"}))),
            TRAIN,
            None,
            (("TooFewImagesPerCategory", "categories[2]"),),
        ),
        c(
            "too-many-categories",
            files_for(_many_categories(2001)),
            TRAIN,
            CLS,
            (("TooManyCategories", "categories"),),
        ),
        c(
            "too-few-categories",
            files_for(classification_doc(2, ("cat",))),
            TRAIN,
            CLS,
            (("TooFewCategories", "categories"),),
        ),
        c(
            "boxes-in-classification",
            files_for(det),
            TRAIN,
            CLS,
            (("AnnotationKindMismatch", "annotations[0].bbox"),),
        ),
        c(
            "detection-without-boxes",
            files_for(cls),
            TRAIN,
            DET,
            (("AnnotationKindMismatch", "annotations"),),
        ),
        # --- images (the structure is valid)
        c(
            "missing-image-file",
            {k: v for k, v in files_for(cls).items() if k != "images/2.png"},
            TRAIN,
            None,
            (("ImageNotFound", "images[1]"),),
            stage="images",
        ),
        c(
            "undecodable-image",
            _with_image(cls, 0, b"\x00\x01 not an image at all " * 20),
            TRAIN,
            None,
            (("InvalidImageFormat", "images[0]"),),
            stage="images",
        ),
        c(
            "oversized-image",
            _with_image(cls, 0, png() + b"\x00" * (20 * 1024 * 1024 + 1)),
            TRAIN,
            None,
            (("InvalidImageSize", "images[0]"),),
            stage="images",
            note="over the 20 MB training limit",
        ),
        c(
            "decompression-bomb",
            _with_image(cls, 1, png_bomb()),
            TRAIN,
            None,
            (("DecompressionBomb", "images[1]"),),
            stage="images",
            note="a PNG header declaring 30000x30000",
        ),
        c(
            "truncated-jpeg",
            files_for(det, {"images/2.jpg": valid_jpeg[: len(valid_jpeg) // 2]}),
            TRAIN,
            None,
            (("InvalidImageFormat", "images[1]"),),
            stage="images",
        ),
        c(
            "zero-byte-image",
            _with_image(cls, 2, b""),
            TRAIN,
            None,
            (("InvalidImageSize", "images[2]"),),
            stage="images",
        ),
        c(
            "pdf-as-image",
            _with_image(cls, 0, PDF),
            TRAIN,
            None,
            (("InvalidImageFormat", "images[0]"),),
            stage="images",
        ),
        c(
            "svg-as-image",
            _with_image(cls, 3, SVG),
            TRAIN,
            None,
            (("InvalidImageFormat", "images[3]"),),
            stage="images",
        ),
        c(
            "image-smaller-than-allowed",
            _with_image(cls, 0, png(5, 5)),
            TRAIN,
            None,
            (("InvalidImageDimension", "images[0]"),),
            stage="images",
            note="declared 32x32, really 5x5",
        ),
        # --- warnings only (valid otherwise)
        c(
            "duplicate-category-name",
            files_for(_cls((("categories", 1, "name"), "cat"))),
            TRAIN,
            None,
            expect_warnings=(("DuplicateCategoryName", "categories[1].name"),),
        ),
        c(
            "unannotated-image",
            files_for(
                _cls((("images", 4), {"id": 5, "width": 32, "height": 32, "file_name": "images/5.png"}))
            ),
            TRAIN,
            None,
            expect_warnings=(("UnannotatedImage", "images[4]"),),
        ),
        c(
            "unused-category-in-evaluation",
            files_for(_cls((("categories", 2), {"id": 3, "name": "bird"}))),
            EVAL,
            None,
            expect_warnings=(("UnusedCategory", "categories[2]"),),
        ),
        c(
            "declared-size-differs",
            files_for(_cls((("images", 0, "width"), 40)), {"images/1.png": png(32, 32)}),
            TRAIN,
            None,
            expect_warnings=(("ImageSizeMismatch", "images[0]"),),
            stage="images",
        ),
    ]


def _valid_cases() -> list[ValidCase]:
    multilabel = classification_doc()
    multilabel["annotations"] += [
        {"id": 5, "image_id": 1, "category_id": 2},
        {"id": 6, "image_id": 3, "category_id": 1},
    ]
    return [
        ValidCase(
            "valid-multiclass",
            files_for(classification_doc()),
            TRAIN,
            CLS,
            CLS,
            False,
            (4, 4, 2),
            {"cat": (2, 2), "dog": (2, 2)},
        ),
        ValidCase(
            "valid-multiclass-inferred",
            files_for(classification_doc(3, ("a", "b", "c"))),
            TRAIN,
            None,
            CLS,
            False,
            (9, 9, 3),
            {"a": (3, 3), "b": (3, 3), "c": (3, 3)},
        ),
        ValidCase(
            "valid-multilabel",
            files_for(multilabel),
            TRAIN,
            None,
            CLS,
            True,
            (4, 6, 2),
            {"cat": (3, 3), "dog": (3, 3)},
        ),
        ValidCase(
            "valid-detection",
            files_for(detection_doc()),
            TRAIN,
            DET,
            DET,
            False,
            (3, 4, 2),
            {"fork": (2, 2), "scissors": (2, 2)},
        ),
        ValidCase(
            "valid-detection-evaluation",
            files_for(detection_doc()),
            EVAL,
            None,
            DET,
            False,
            (3, 4, 2),
            {"fork": (2, 2), "scissors": (2, 2)},
        ),
    ]


CASES: list[CorpusCase] = _cases()
VALID_CASES: list[ValidCase] = _valid_cases()
