"""Validating a dataset's annotation files where they live: fetch each COCO file, check its
structure (loupe.coco), then check its images exist and decode (all, or a bounded sample).

A dataset is validated for both purposes at once: ``valid`` (train and evaluate),
``evaluationOnly`` (a fine test set that can't train, e.g. one image in a category), ``invalid``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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
from loupe.storage.blob_access import BlobLocation, BlobReader, BlobReadError, BlobUrlError
from loupe.storage.dataset_files import DatasetFiles
from loupe.storage.entities import utc_now, wire_time

# Image checks accept what either purpose accepts (training: 10..10240 px, evaluation: 10..16000 px);
# the per-purpose dimension rules are applied to the declared sizes by the structure check.
IMAGE_CHECK_LIMITS = ImageLimits(max_bytes=20 * 1024 * 1024, min_dim=10, max_dim=16000)
MAX_LISTED_ISSUES = 50

Status = Literal["valid", "evaluationOnly", "invalid"]


class Problem(BaseModel):
    """One error or warning, naming its place: ``annotationFileUris[0].annotations[17].bbox[2]``."""

    model_config = ConfigDict(frozen=True)

    code: str
    target: str | None
    message: str

    def wire(self) -> dict[str, Any]:
        return {"code": self.code, "target": self.target, "message": self.message}


class CategoryCount(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    image_count: int = 0
    annotation_count: int = 0

    def wire(self) -> dict[str, Any]:
        return {"name": self.name, "imageCount": self.image_count, "annotationCount": self.annotation_count}


class DatasetValidation(BaseModel):
    """What validating a dataset found; stored with the dataset (as this model's JSON) and shown
    to users as ``validation`` (``wire()``)."""

    model_config = ConfigDict(frozen=True)

    status: Status
    depth: Literal["full", "sample", "structure"]
    annotation_kind: AnnotationKind | None
    multilabel: bool
    image_count: int = 0
    annotation_count: int = 0
    images_checked: int = 0
    categories: list[CategoryCount] = Field(default_factory=list)
    errors: list[Problem] = Field(default_factory=list)
    warnings: list[Problem] = Field(default_factory=list)
    error_count: int = 0
    warning_count: int = 0
    validated: datetime = Field(default_factory=utc_now)

    @property
    def usable_for_training(self) -> bool:
        return self.status == "valid"

    @property
    def usable_for_evaluation(self) -> bool:
        return self.status in ("valid", "evaluationOnly")

    def first_problem(self) -> str:
        """The first error, for one-line messages (": <target>: <message>"), or ''."""
        return f": {self.errors[0].target}: {self.errors[0].message}" if self.errors else ""

    def wire(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "depth": self.depth,
            "multilabel": self.multilabel,
            "imageCount": self.image_count,
            "annotationCount": self.annotation_count,
            "imagesChecked": self.images_checked,
            "categories": [category.wire() for category in self.categories],
            "errorCount": self.error_count,
            "warningCount": self.warning_count,
            "errors": [error.wire() for error in self.errors],
            "warnings": [warning.wire() for warning in self.warnings],
            "validatedDateTime": wire_time(self.validated),
        }


def _prefixed(issues: list[Issue], prefix: str) -> list[Problem]:
    return [Problem(code=issue.code, target=f"{prefix}.{issue.target}" if issue.target else prefix,
                    message=issue.message) for issue in issues]


@dataclass
class _FileCheck:
    """One annotation file's outcome."""

    report: CocoReport
    usable_for_training: bool
    usable_for_evaluation: bool
    errors: list[Problem]
    error_count: int
    warnings: list[Problem]
    warning_count: int
    images_checked: int
    depth: str


class DatasetValidator:
    def __init__(self, reader: BlobReader, settings: Settings) -> None:
        self.reader = reader
        self.settings = settings
        self.files = DatasetFiles(reader, settings)

    def _fetch_image(self, coco: BlobLocation):
        def fetch(entry: ImageEntry) -> bytes:
            try:
                location = self.files.image_location(entry.url, entry.file_name, coco)
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
        location = self.files.locate(uri, index)
        if data is None:
            data = self.files.read_annotation_file(location, index)
        prefix = f"annotationFileUris[{index}]"
        allowed = self.files.image_url_allowed(location)
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
            errors.append(Problem(code="KindMismatch", target="annotationFileUris",
                                  message="the annotation files mix classification and object detection"))
            error_count += 1
        categories: dict[str, CategoryCount] = {}
        for check in checks:
            for category in check.report.categories:
                merged = categories.get(category.name) or CategoryCount(name=category.name)
                categories[category.name] = CategoryCount(
                    name=category.name, image_count=merged.image_count + category.image_count,
                    annotation_count=merged.annotation_count + category.annotation_count)
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
