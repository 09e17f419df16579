"""Structure validation of a COCO annotation file: JSON, schema, ids, references, boxes, quotas.

Implements every rule of the official checker (check_coco_annotations.py in
cognitive-service-vision-model-customization-python-samples) and the documented quotas
(docs/wire-contract.md#limits), plus what a server facing untrusted files needs: precise types (a boolean
is not an integer), safe file names, allowed image hosts, bounded size and depth.

Speed matters: a detection file at the quota has 200,000 images and about a million boxes, and
the HTTP API must answer well within its time limit. The file is parsed with orjson into plain
lists and dicts (parsing.py), and each section is checked in one pass with local variables;
per-image and per-category counts are then done with numpy, and issues are only formatted when
the capped collector will list them. Image locations are judged by locations.py.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Callable
from typing import Any

import numpy as np

from loupe.coco.issues import MISSING, IssueCollector, describe_value, quote
from loupe.coco.locations import MAX_FILE_NAME_LENGTH, LocationChecker, plain_file_name, plain_url
from loupe.coco.parsing import MAX_COCO_BYTES, gc_paused, parse_json
from loupe.coco.quotas import (
    MAX_CATEGORY_NAME_LENGTH,
    MAX_CATEGORY_NAMES_CHARS,
    Purpose,
    Quota,
    dimension_range,
    quota_for,
)
from loupe.coco.report import CategorySummary, CocoReport, ImageEntry
from loupe.enums import AnnotationKind
from loupe.errors import shown, text_problem

log = logging.getLogger(__name__)

# Slack on left + width <= 1 (and top + height): files rounded to 6 decimals can overshoot by
# 1e-6, and the trainer clips boxes to the image anyway.
BOX_TOLERANCE = 1e-6
_NOUN = {"images": "image", "annotations": "annotation", "categories": "category"}
_NUMBER = frozenset({int, float})  # exact types: bool is a subclass of int and must not pass


def validate_coco(
    data: bytes | bytearray | memoryview | str,
    *,
    purpose: Purpose,
    expected_kind: AnnotationKind | None = None,
    url_allowed: Callable[[str], bool] | None = None,
    max_bytes: int = MAX_COCO_BYTES,
) -> CocoReport:
    """Check a COCO file completely (images are not fetched). Never raises on bad input.

    ``expected_kind``: the kind the caller declared (the API's annotationKind); content that does
    not match it is an error. ``url_allowed(url)``: whether Loupe may fetch images from this
    ``absolute_url``/``coco_url``'s origin; it is called once per distinct scheme://host:port (with
    the first such URL) and its verdict holds for every URL of that origin. False makes a
    ForeignImageHost error. Without it, any well-formed http(s) URL passes.
    """
    return parse_and_validate(
        data, purpose=purpose, expected_kind=expected_kind, url_allowed=url_allowed, max_bytes=max_bytes
    )[0]


def parse_and_validate(
    data: bytes | bytearray | memoryview | str,
    *,
    purpose: Purpose,
    expected_kind: AnnotationKind | None = None,
    url_allowed: Callable[[str], bool] | None = None,
    max_bytes: int = MAX_COCO_BYTES,
) -> tuple[CocoReport, dict[str, Any] | None]:
    """Like validate_coco, and also hands back the parsed document when there are no errors
    (for the trainer, which would otherwise parse the file twice)."""
    checker = _Checker(
        Purpose(purpose), AnnotationKind(expected_kind) if expected_kind else None, url_allowed
    )
    doc = None
    try:
        with gc_paused():
            doc = checker.run(data, max_bytes)
    except Exception as exc:  # a bug must not turn a user's file into a 500
        log.exception("COCO validation failed internally")
        checker.errors.add(
            "InternalValidationError",
            "",
            f"validation stopped on an internal error ({type(exc).__name__}: {shown(str(exc))}); "
            "please report this file",
        )
    report = checker.report()
    return report, (doc if report.ok else None)


class _Checker:
    """One validation run. Sections are checked in order: categories, images, annotations."""

    def __init__(
        self,
        purpose: Purpose,
        expected_kind: AnnotationKind | None,
        url_allowed: Callable[[str], bool] | None,
    ) -> None:
        self.purpose = purpose
        self.expected_kind = expected_kind
        self.errors = IssueCollector("error")
        self.warnings = IssueCollector("warning")
        self.kind: AnnotationKind | None = expected_kind
        self.multilabel = False
        self.counts = (0, 0, 0)
        self.categories: list[CategorySummary] = []
        self.entries: list[ImageEntry] = []
        self.locations = LocationChecker(self.errors, url_allowed)

    def report(self) -> CocoReport:
        n_img, n_ann, n_cat = self.counts
        return CocoReport(
            annotation_kind=self.kind,
            multilabel=self.multilabel,
            image_count=n_img,
            annotation_count=n_ann,
            category_count=n_cat,
            categories=self.categories,
            errors=self.errors.issues(),
            warnings=self.warnings.issues(),
            error_count=self.errors.total,
            warning_count=self.warnings.total,
            images=self.entries,
        )

    # ---------------------------------------------------------------- parsing

    def run(self, data: bytes | bytearray | memoryview | str, max_bytes: int) -> dict[str, Any] | None:
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogatepass")
        parsed, doc = parse_json(data, max_bytes, self.errors)
        if not parsed:
            return None
        if type(doc) is not dict:
            self.errors.add(
                "NotAnObject",
                "",
                'the top level must be a JSON object with "images", "annotations" and '
                f'"categories", found {describe_value(doc)}',
            )
            return None
        images = self.section(doc, "images", "image")
        annotations = self.section(doc, "annotations", "annotation")
        categories = self.section(doc, "categories", "category")
        self.counts = (len(images or ()), len(annotations or ()), len(categories or ()))
        self.check(images, annotations, categories)
        return doc

    def section(self, doc: dict[str, Any], key: str, noun: str) -> list[Any] | None:
        value = doc.get(key, MISSING)
        if value is MISSING:
            self.errors.add("MissingField", key, f'"{key}" is missing; expected a list of {noun} objects')
        elif value is None:
            self.errors.add("NullField", key, f'"{key}" is null; expected a list of {noun} objects')
        elif type(value) is not list:
            self.errors.add(
                "InvalidType", key, f'"{key}" must be a list of {noun} objects, found {describe_value(value)}'
            )
        else:
            return value
        return None

    # ---------------------------------------------------------------- shared field checks

    def bad_id(self, value: Any, n: int, section: str, index: int, first_use: Callable[[int], int]) -> None:
        """Reports why ``value`` is not a fresh id in [1, n]; ``first_use(id)``: index of its first use."""
        target = f"{section}[{index}].id"
        if type(value) is not int:
            self.errors.bad_field(target, value, f"an integer id in [1, {n}]")
            return
        code = "IdOutOfRange" if not 0 < value <= n else "DuplicateId"
        if not self.errors.wants(code):
            self.errors.count(code)
        elif code == "IdOutOfRange":
            self.errors.add(
                code,
                target,
                f"{target} must be in [1, {n}]: {_NOUN[section]} ids run from 1 to the number of "
                f"{section} ({n}) without gaps; found {value}",
            )
        else:
            self.errors.add(
                code,
                target,
                f"{target} {value} is already used by {section}[{first_use(value)}]; ids must be unique",
            )

    def bad_ref(self, value: Any, n: int, known: list[int] | None, index: int, field: str, noun: str) -> None:
        target = f"annotations[{index}].{field}"
        if type(value) is not int:
            self.errors.bad_field(
                target, value, f"the integer id of {'an' if noun == 'image' else 'a'} {noun}"
            )
        elif known is not None:  # the referenced section is usable, so the id names nothing
            code = "UnknownImageId" if noun == "image" else "UnknownCategoryId"
            if self.errors.wants(code):
                section = "images" if noun == "image" else "categories"
                self.errors.add(
                    code,
                    target,
                    f'{target} {value} is not the id of any {noun} in "{section}"'
                    + (f" (ids should run 1..{n})" if n else f" (the file has no {section})"),
                )
            else:
                self.errors.count(code)

    # ---------------------------------------------------------------- sections

    def check(
        self, images: list[Any] | None, annotations: list[Any] | None, categories: list[Any] | None
    ) -> None:
        cat_first, cat_names = self.check_categories(categories or [])
        img_first = self.check_images(images or [])
        img_usable = img_first if images is not None else None
        cat_usable = cat_first if categories is not None else None
        if annotations is None:
            # without annotations, per-image and per-category counts would only repeat that error
            self.check_quotas(images, categories, None, None, cat_names, array("q"), len(cat_first))
            return
        keys = self.check_annotations(annotations, img_usable, cat_usable)
        self.check_quotas(images, categories, img_usable, cat_usable, cat_names, keys, len(cat_first))

    def check_categories(self, cats: list[Any]) -> tuple[list[int], list[str | None]]:
        n = len(cats)
        first = [0] * (n + 1)  # by id: 1 + index of the category with that id
        names: list[str | None] = [None] * (n + 1)
        name_at: dict[str, int] = {}
        total_chars = 0
        for j, c in enumerate(cats):
            if type(c) is not dict:
                self.errors.add(
                    "InvalidType",
                    f"categories[{j}]",
                    f'categories[{j}] must be an object with "id" and "name", found {describe_value(c)}',
                )
                continue
            cid = c.get("id", MISSING)
            id_ok = type(cid) is int and 0 < cid <= n and not first[cid]
            if id_ok:
                first[cid] = j + 1
            else:
                self.bad_id(cid, n, "categories", j, lambda v: first[v] - 1)
            name = c.get("name", MISSING)
            target = f"categories[{j}].name"
            if type(name) is not str:
                self.errors.bad_field(target, name, "a non-empty string")
                continue
            if not name.strip():
                self.errors.add(
                    "InvalidCategoryName",
                    target,
                    f"{target} must be a non-empty name (it is used as the label), "
                    f"found {describe_value(name)}",
                )
                continue
            if not self.category_name_ok(name, target):
                continue
            total_chars += len(name)
            if name in name_at:
                self.warnings.add(
                    "DuplicateCategoryName",
                    target,
                    f"{target} {quote(name)} is also the name of categories[{name_at[name]}]; "
                    "duplicate names may harm the model and make predictions ambiguous",
                )
            else:
                name_at[name] = j
            if id_ok:
                names[cid] = name
        if total_chars > MAX_CATEGORY_NAMES_CHARS:
            self.errors.add(
                "CategoryNamesTooLong",
                "categories",
                f"the category names take {total_chars} characters together; at most "
                f"{MAX_CATEGORY_NAMES_CHARS} are allowed (they are stored with the dataset)",
            )
        return first, names

    def category_name_ok(self, name: str, target: str) -> bool:
        """Length and characters of a label (docs/wire-contract.md#limits); reports what is wrong."""
        if len(name) > MAX_CATEGORY_NAME_LENGTH:
            self.errors.add(
                "InvalidCategoryName",
                target,
                f"{target} is {len(name)} characters long; at most {MAX_CATEGORY_NAME_LENGTH} are allowed "
                f"(found {quote(name)})",
            )
            return False
        problem = text_problem(name)
        if problem:
            self.errors.add("InvalidCategoryName", target, f"{target} {quote(name)} {problem}")
            return False
        return True

    def check_images(self, images: list[Any]) -> list[int]:
        n = len(images)
        first = [0] * (n + 1)  # by id: 1 + index of the image with that id
        lo, hi = dimension_range(self.purpose)
        safe_name, url_match = plain_file_name, plain_url
        locations = self.locations
        allowed_origins = locations.allowed_origins
        scope = locations.scope
        missing = MISSING
        entries = self.entries
        append = entries.append
        for i, im in enumerate(images):
            if type(im) is not dict:
                self.errors.add(
                    "InvalidType",
                    f"images[{i}]",
                    f"images[{i}] must be an object with id, width, height and file_name, "
                    f"found {describe_value(im)}",
                )
                continue
            iid = im.get("id", missing)
            if type(iid) is int and 0 < iid <= n and not first[iid]:
                first[iid] = i + 1
            else:
                self.bad_id(iid, n, "images", i, lambda v: first[v] - 1)
                iid = 0
            w = im.get("width", missing)
            if not (type(w) is int and lo <= w <= hi):
                w = self.bad_dim(w, i, "width", lo, hi)
            h = im.get("height", missing)
            if not (type(h) is int and lo <= h <= hi):
                h = self.bad_dim(h, i, "height", lo, hi)
            name = im.get("file_name", missing)
            location_ok = True
            if not (type(name) is str and safe_name(name) and len(name) <= MAX_FILE_NAME_LENGTH):
                location_ok = locations.file_name_ok(name, i)
            url = im.get("absolute_url")
            coco_url = im.get("coco_url")
            if url is not None or coco_url is not None:
                # fast path: one plain http(s) URL on an origin already allowed
                m = url_match(url) if coco_url is None and type(url) is str else None
                if m is None or allowed_origins.get(url[: m.end(3)] if scope is None else scope(url)) is not True:
                    url = locations.image_url(im, i)
                    location_ok = location_ok and url is not None
            if location_ok:
                append(ImageEntry(i, iid, name, url, w, h))
        return first

    def bad_dim(self, value: Any, index: int, key: str, lo: int, hi: int) -> int:
        """Reports an invalid width/height; returns the value when it is usable, else 0."""
        target = f"images[{index}].{key}"
        if type(value) is float and value.is_integer():  # 640.0: the official checker takes it too
            value = int(value)
            if lo <= value <= hi:
                return value
        if type(value) is not int:
            self.errors.bad_field(target, value, f"an integer number of pixels in [{lo}, {hi}]")
            return 0
        self.errors.add(
            "InvalidImageDimension",
            target,
            f"{target} must be in [{lo}, {hi}] pixels for {self.purpose.value}, found {value}",
        )
        return value if value > 0 else 0

    def check_annotations(
        self, anns: list[Any], img_first: list[int] | None, cat_first: list[int] | None
    ) -> array:
        """Checks every annotation; returns image_id * stride + category_id per annotation (0 for an
        invalid reference), stride being the number of categories + 1."""
        n = len(anns)
        n_img = len(img_first) - 1 if img_first is not None else 0
        n_cat = len(cat_first) - 1 if cat_first is not None else 0
        # when a section is unusable, references into it are only type-checked
        img_known = img_first if img_first is not None else [0]
        cat_known = cat_first if cat_first is not None else [0]
        seen = bytearray(n + 1)  # annotation ids in use
        stride = n_cat + 1
        # One key per annotation, image_id * stride + category_id (0 where the reference is invalid);
        # counting is done afterwards with numpy, which keeps this loop short.
        keys = array("q")
        add_key = keys.append
        number = _NUMBER
        missing = MISSING
        right = 1.0 + BOX_TOLERANCE
        n_box = 0
        first_box = -1
        no_box: list[int] = []  # first few annotations without a bbox
        no_box_count = 0

        def first_use(value: int) -> int:
            return next(
                k
                for k, x in enumerate(anns)
                if type(x) is dict and type(x.get("id")) is int and x["id"] == value
            )

        for i, a in enumerate(anns):
            if type(a) is not dict:
                self.errors.add(
                    "InvalidType",
                    f"annotations[{i}]",
                    f"annotations[{i}] must be an object with id, image_id and category_id, "
                    f"found {describe_value(a)}",
                )
                continue
            aid = a.get("id", missing)
            if type(aid) is int and 0 < aid <= n and not seen[aid]:
                seen[aid] = 1
            else:
                self.bad_id(aid, n, "annotations", i, first_use)
            iid = a.get("image_id", missing)
            if not (type(iid) is int and 0 < iid <= n_img and img_known[iid]):
                self.bad_ref(iid, n_img, img_first, i, "image_id", "image")
                iid = 0
            cid = a.get("category_id", missing)
            if not (type(cid) is int and 0 < cid <= n_cat and cat_known[cid]):
                self.bad_ref(cid, n_cat, cat_first, i, "category_id", "category")
                cid = 0
            add_key(iid * stride + cid)
            box = a.get("bbox")
            if box is None:
                no_box_count += 1
                if len(no_box) < 50:
                    no_box.append(i)
                continue
            if not n_box:
                first_box = i
            n_box += 1
            if type(box) is list and len(box) == 4:
                left, top, width, height = box
                try:  # comparisons first (the common case); a string or null raises TypeError
                    if (
                        0.0 <= left < 1.0
                        and 0.0 <= top < 1.0
                        and 0.0 < width <= 1.0
                        and 0.0 < height <= 1.0
                        and left + width <= right
                        and top + height <= right
                        and type(left) in number
                        and type(top) in number
                        and type(width) in number
                        and type(height) in number
                    ):
                        continue
                except TypeError:
                    pass
            self.bad_box(box, i)

        self.settle_kind(n, n_box, first_box, no_box, no_box_count)
        if not n:
            self.errors.add(
                "NoAnnotations",
                "annotations",
                '"annotations" is empty; every image needs a label (classification) '
                "or boxes (object detection)",
            )
        return keys

    def settle_kind(self, n: int, n_box: int, first_box: int, no_box: list[int], no_box_count: int) -> None:
        inferred = AnnotationKind.DETECTION if n_box else (AnnotationKind.CLASSIFICATION if n else None)
        declared = self.expected_kind
        self.kind = declared or inferred
        if declared is AnnotationKind.CLASSIFICATION and n_box:
            self.errors.add(
                "AnnotationKindMismatch",
                f"annotations[{first_box}].bbox",
                f"the dataset is declared imageClassification, but {n_box} annotation"
                f"{'s have' if n_box > 1 else ' has'} a bbox (first: annotations[{first_box}]); "
                "remove the boxes or declare imageObjectDetection",
            )
        elif declared is AnnotationKind.DETECTION and n and not n_box:
            self.errors.add(
                "AnnotationKindMismatch",
                "annotations",
                'the dataset is declared imageObjectDetection, but no entry of "annotations" has a bbox; '
                "add bbox [left, top, width, height] (relative, 0-1) or declare imageClassification",
            )
        elif self.kind is AnnotationKind.DETECTION and no_box_count:
            for i in no_box:
                target = f"annotations[{i}].bbox"
                self.errors.add(
                    "MissingField",
                    target,
                    f"{target} is missing; object detection needs [left, top, width, height] "
                    "relative to the image size (0-1)",
                )
            self.errors.count("MissingField", no_box_count - len(no_box))

    def bad_box(self, box: Any, index: int) -> None:
        code = "InvalidBoundingBox"
        if not self.errors.wants(code):
            self.errors.count(code)
            return
        target = f"annotations[{index}].bbox"
        shape = "[left, top, width, height] relative to the image size (0-1)"
        if type(box) is not list:
            self.errors.add(code, target, f"{target} must be a list {shape}, found {describe_value(box)}")
            return
        if len(box) != 4:
            self.errors.add(code, target, f"{target} must have 4 numbers {shape}, found {len(box)}")
            return
        for k, v in enumerate(box):
            if type(v) not in _NUMBER:
                self.errors.add(
                    code, f"{target}[{k}]", f"{target}[{k}] must be a number, found {describe_value(v)}"
                )
                return
        left, top, width, height = box
        hint = ""
        if max(box) > 1.0 and min(box) >= 0.0:
            hint = (
                " (these look like pixels; Loupe, like the retired service, needs coordinates relative "
                "to the image size: divide x and width by the image width, y and height by its height)"
            )
        names = ("left", "top", "width", "height")
        for k, ok, rule in (
            (0, 0.0 <= left < 1.0, "in [0, 1)"),
            (1, 0.0 <= top < 1.0, "in [0, 1)"),
            (2, 0.0 < width <= 1.0, "in (0, 1] (a box needs an area)"),
            (3, 0.0 < height <= 1.0, "in (0, 1] (a box needs an area)"),
        ):
            if not ok:
                self.errors.add(
                    code,
                    f"{target}[{k}]",
                    f"{target}[{k}]: {names[k]} must be {rule}, found {box[k]!r}{hint}",
                )
                return
        if left + width > 1.0 + BOX_TOLERANCE:
            self.errors.add(
                code, target, f"{target}: left + width must be <= 1, found {left + width:.6g}{hint}"
            )
        else:
            self.errors.add(
                code, target, f"{target}: top + height must be <= 1, found {top + height:.6g}{hint}"
            )

    def check_quotas(
        self,
        images: list[Any] | None,
        categories: list[Any] | None,
        img_first: list[int] | None,
        cat_first: list[int] | None,
        cat_names: list[str | None],
        keys: array,
        stride: int,
    ) -> None:
        kind = self.kind
        n_img, _, n_cat = self.counts
        quota = quota_for(kind, self.purpose) if kind is not None else None
        if images is not None:
            if not n_img:
                self.errors.add("NoImages", "images", '"images" is empty; a dataset needs at least one image')
            elif quota and n_img > quota.max_images:
                self.errors.add(
                    "TooManyImages",
                    "images",
                    f'"images" lists {n_img} images; {kind.value} {self.purpose.value} allows at most '
                    f"{quota.max_images}",
                )
        if categories is not None and quota:
            if n_cat < quota.min_categories:
                self.errors.add(
                    "TooFewCategories",
                    "categories",
                    f'"categories" lists {n_cat} categor{"y" if n_cat == 1 else "ies"}; '
                    f"{kind.value} needs at least {quota.min_categories}",
                )
            elif n_cat > quota.max_categories:
                self.errors.add(
                    "TooManyCategories",
                    "categories",
                    f'"categories" lists {n_cat} categories; {kind.value} allows at most '
                    f"{quota.max_categories}",
                )

        key = np.frombuffer(keys, dtype=np.int64) if len(keys) else np.zeros(0, dtype=np.int64)
        img_of, cat_of = np.divmod(key, stride)
        n_img_slots = len(img_first) if img_first is not None else 1
        img_ann = np.bincount(img_of, minlength=n_img_slots)  # annotations per image id
        cat_ann = np.bincount(cat_of, minlength=stride)  # annotations per category id
        pairs = np.sort(key[(img_of > 0) & (cat_of > 0)])
        if len(pairs):  # distinct (image, category); np.unique's hashing is several times slower
            pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]
        pair_img, pair_cat = np.divmod(pairs, stride)
        cat_img = np.bincount(pair_cat, minlength=stride)  # distinct images per category id
        labelled_images = int(np.count_nonzero(np.diff(pair_img))) + 1 if len(pair_img) else 0
        self.multilabel = kind is AnnotationKind.CLASSIFICATION and len(pairs) > labelled_images

        if cat_first is not None:
            # the per-category minimum means nothing when the images themselves are unusable
            self.check_categories_used(
                categories or [],
                cat_first,
                cat_names,
                quota if img_first is not None else None,
                cat_img,
                cat_ann,
            )
        if img_first is None:
            return
        limit = quota.max_regions_per_image if quota and kind is AnnotationKind.DETECTION else None
        if limit is not None:
            for iid in np.flatnonzero(img_ann > limit).tolist():
                i = img_first[iid] - 1
                self.errors.add(
                    "TooManyRegions",
                    f"images[{i}]",
                    f"images[{i}] (id {iid}) has {int(img_ann[iid])} regions; at most {limit} per image",
                )
        declared = np.array(img_first, dtype=np.int64) > 0  # ids some image really has
        unannotated = np.flatnonzero((img_ann == 0) & declared)
        for iid in unannotated[: self.warnings.max_per_code].tolist():
            i = img_first[iid] - 1
            self.warnings.add(
                "UnannotatedImage", f"images[{i}]", f"images[{i}] (id {iid}) has no annotations"
            )
        self.warnings.count(
            "UnannotatedImage", len(unannotated) - min(len(unannotated), self.warnings.max_per_code)
        )

    def check_categories_used(
        self,
        categories: list[Any],
        cat_first: list[int],
        cat_names: list[str | None],
        quota: Quota | None,
        cat_img: np.ndarray,
        cat_ann: np.ndarray,
    ) -> None:
        """Category summaries, and the minimum of images per category."""
        training = self.purpose is Purpose.TRAINING
        for j, c in enumerate(categories):
            cid = c.get("id") if type(c) is dict else None
            if not (type(cid) is int and 0 < cid < len(cat_first) and cat_first[cid] == j + 1):
                continue
            name = cat_names[cid]
            n_images = int(cat_img[cid])
            self.categories.append(
                CategorySummary(
                    id=cid, name=name or "", image_count=n_images, annotation_count=int(cat_ann[cid])
                )
            )
            if quota is None or n_images >= quota.min_images_per_category:
                continue
            target = f"categories[{j}]"
            label = f"{target} (id {cid}, {quote(name or '')})"
            if training or n_images:
                self.errors.add(
                    "TooFewImagesPerCategory",
                    target,
                    f"{label} has {n_images} image{'s' if n_images != 1 else ''}; "
                    f"{self.purpose.value} needs at least {quota.min_images_per_category} per category",
                )
            else:
                self.warnings.add("UnusedCategory", target, f"{label} has no images in this evaluation set")
