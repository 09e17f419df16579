"""Validating a dataset's annotation files where they live: fetch each COCO file, check its
structure (loupe.coco), then check its images exist and decode (all, or a bounded sample).

A dataset is validated for both purposes at once: ``valid`` (train and evaluate),
``evaluationOnly`` (a fine test set that can't train, e.g. one image in a category), ``invalid``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from loupe.coco import (
    CocoReport,
    ImageEntry,
    ImageFetchError,
    Issue,
    Purpose,
    check_images,
    validate_coco,
)
from loupe.enums import AnnotationKind
from loupe.imaging import ImageLimits
from loupe.settings import Settings
from loupe.storage.blob_access import BlobLocation, BlobReader, BlobReadError, BlobUrlError, parse_blob_url
from loupe.storage.entities import utc_now, wire_time

MAX_ANNOTATION_FILE_BYTES = 512 * 1024 * 1024
# Image checks accept what either purpose accepts (training: 10..10240 px, evaluation: 10..16000 px);
# the per-purpose dimension rules are applied to the declared sizes by the structure check.
IMAGE_CHECK_LIMITS = ImageLimits(max_bytes=20 * 1024 * 1024, min_dim=10, max_dim=16000)
MAX_LISTED_ISSUES = 50

Status = Literal["valid", "evaluationOnly", "invalid"]


class AnnotationFileUnreadable(Exception):
    """An annotation URI that is malformed, not allowed, or can't be read (DatasetInvalidAnnotationUri)."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.target = f"annotationFileUris[{index}]"
        self.message = message


@dataclass
class DatasetValidation:
    status: Status
    depth: Literal["full", "sample", "structure"]
    annotation_kind: AnnotationKind | None
    multilabel: bool
    image_count: int = 0
    annotation_count: int = 0
    images_checked: int = 0
    categories: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    error_count: int = 0
    warning_count: int = 0

    def wire(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "depth": self.depth,
            "multilabel": self.multilabel,
            "imageCount": self.image_count,
            "annotationCount": self.annotation_count,
            "imagesChecked": self.images_checked,
            "categories": self.categories,
            "errorCount": self.error_count,
            "warningCount": self.warning_count,
            "errors": self.errors,
            "warnings": self.warnings,
            "validatedDateTime": wire_time(utc_now()),
        }


def _prefixed(issues: list[Issue], prefix: str) -> list[dict[str, str]]:
    out = []
    for issue in issues:
        target = f"{prefix}.{issue.target}" if issue.target else prefix
        out.append({"code": issue.code, "target": target, "message": issue.message})
    return out


@dataclass
class _FileCheck:
    """One annotation file's outcome."""

    report: CocoReport
    usable_for_training: bool
    usable_for_evaluation: bool
    errors: list[dict[str, str]]
    error_count: int
    warnings: list[dict[str, str]]
    warning_count: int
    images_checked: int
    depth: str


class DatasetValidator:
    def __init__(self, reader: BlobReader, settings: Settings) -> None:
        self.reader = reader
        self.settings = settings
        self.storage = reader.storage

    def locate(self, uri: str, index: int) -> BlobLocation:
        try:
            return parse_blob_url(uri, self.storage)
        except BlobUrlError as exc:
            raise AnnotationFileUnreadable(index, f"annotationFileUris[{index}]: {exc}") from None

    def image_url_allowed(self, coco: BlobLocation):
        allowed_hosts = {entry.lower().partition("/")[0] for entry in self.settings.allowed_storage_hosts}

        def allowed(url: str) -> bool:
            if self.settings.allow_any_image_host:
                return True
            try:
                location = parse_blob_url(url, self.storage)
            except BlobUrlError:
                return False
            # the COCO file's own account, Loupe's account, or an operator-allowed host
            if location.account_url in (coco.account_url, self.storage.blob_account_url):
                return True
            return urlsplit(location.account_url).netloc in allowed_hosts

        return allowed

    def image_location(self, entry: ImageEntry, coco: BlobLocation) -> BlobLocation:
        if entry.url:
            return parse_blob_url(entry.url, self.storage)
        return coco.sibling(entry.file_name)

    def _fetch_image(self, coco: BlobLocation):
        def fetch(entry: ImageEntry) -> bytes:
            try:
                location = self.image_location(entry, coco)
                return self.reader.read(location, IMAGE_CHECK_LIMITS.max_bytes)
            except BlobUrlError as exc:
                raise ImageFetchError("ImageNotAllowed", str(exc)) from None
            except BlobReadError as exc:
                code = {"BlobNotFound": "ImageNotFound", "BlobAccessDenied": "ImageAccessDenied",
                        "BlobTooLarge": "InvalidImageSize"}.get(exc.code, "ImageFetchFailed")
                raise ImageFetchError(code, exc.message) from None

        return fetch

    def check_file(self, index: int, uri: str, expected_kind: AnnotationKind | None,
                   data: bytes | None = None) -> _FileCheck:
        location = self.locate(uri, index)
        if data is None:
            try:
                data = self.reader.read(location, MAX_ANNOTATION_FILE_BYTES)
            except BlobReadError as exc:
                raise AnnotationFileUnreadable(index, f"annotationFileUris[{index}]: {exc.message}") from None
        prefix = f"annotationFileUris[{index}]"
        allowed = self.image_url_allowed(location)
        training = validate_coco(data, purpose=Purpose.TRAINING, expected_kind=expected_kind, url_allowed=allowed)
        report, evaluation_ok = training, training.ok
        if not training.ok:
            evaluation = validate_coco(data, purpose=Purpose.EVALUATION, expected_kind=expected_kind,
                                       url_allowed=allowed)
            evaluation_ok = evaluation.ok
            if evaluation.ok:
                report = evaluation
        errors = _prefixed(training.errors, prefix)
        error_count = training.error_count
        warnings = _prefixed(report.warnings, prefix)
        warning_count = report.warning_count
        images_ok, checked, depth = True, 0, "structure"
        # images are checked even when the structure has errors, so one upload gets the full account
        if report.images:
            result = check_images(
                report, self._fetch_image(location), limits=IMAGE_CHECK_LIMITS,
                full_limit=self.settings.image_check_full_limit,
                sample_size=self.settings.image_check_sample_size,
                concurrency=self.settings.image_check_concurrency,
            )
            images_ok = result.error_count == 0
            errors += _prefixed(result.errors, prefix)
            error_count += result.error_count
            warnings += _prefixed(result.warnings, prefix)
            warning_count += result.warning_count
            checked, depth = result.checked, result.depth
        return _FileCheck(report, training.ok and images_ok, evaluation_ok and images_ok, errors, error_count,
                          warnings, warning_count, checked, depth)

    def validate(self, uris: list[str], expected_kind: AnnotationKind | None,
                 preloaded: dict[int, bytes] | None = None) -> DatasetValidation:
        """Raises AnnotationFileUnreadable for a URI that can't be read at all."""
        checks = [self.check_file(i, uri, expected_kind, (preloaded or {}).get(i)) for i, uri in enumerate(uris)]
        kinds = {c.report.annotation_kind for c in checks if c.report.annotation_kind is not None}
        errors = [e for c in checks for e in c.errors]
        error_count = sum(c.error_count for c in checks)
        if len(kinds) > 1:
            errors.append({"code": "KindMismatch", "target": "annotationFileUris",
                           "message": "the annotation files mix classification and object detection"})
            error_count += 1
        categories: dict[str, dict[str, Any]] = {}
        for check in checks:
            for category in check.report.categories:
                merged = categories.setdefault(category.name, {"name": category.name, "imageCount": 0,
                                                               "annotationCount": 0})
                merged["imageCount"] += category.image_count
                merged["annotationCount"] += category.annotation_count
        consistent = len(kinds) <= 1
        if consistent and all(c.usable_for_training for c in checks):
            status: Status = "valid"
        elif consistent and all(c.usable_for_evaluation for c in checks):
            status = "evaluationOnly"
        else:
            status = "invalid"
        depths = {c.depth for c in checks}
        depth = "structure" if "structure" in depths else "sample" if "sample" in depths else "full"
        return DatasetValidation(
            status=status,
            depth=depth,
            annotation_kind=next(iter(kinds)) if len(kinds) == 1 else expected_kind,
            multilabel=any(c.report.multilabel for c in checks),
            image_count=sum(c.report.image_count for c in checks),
            annotation_count=sum(c.report.annotation_count for c in checks),
            images_checked=sum(c.images_checked for c in checks),
            categories=list(categories.values()),
            errors=errors[:MAX_LISTED_ISSUES],
            warnings=[w for c in checks for w in c.warnings][:MAX_LISTED_ISSUES],
            error_count=error_count,
            warning_count=sum(c.warning_count for c in checks),
        )
