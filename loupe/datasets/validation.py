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
from loupe.coco.quotas import MAX_CATEGORY_NAMES_CHARS, QUOTAS
from loupe.datasets import limits
from loupe.enums import AnnotationKind
from loupe.errors import shown
from loupe.imaging import ImageLimits
from loupe.settings import Settings
from loupe.storage.blob_access import BlobLocation, BlobReader, BlobReadError, BlobUrlError
from loupe.storage.dataset_files import MAX_ANNOTATION_FILE_BYTES, AnnotationFileUnreadable, DatasetFiles
from loupe.storage.entities import json_bytes, utc_now, wire_time

# Image checks accept what either purpose accepts (training: 10..10240 px, evaluation: 10..16000 px);
# the per-purpose dimension rules are applied to the declared sizes by the structure check.
IMAGE_CHECK_LIMITS = ImageLimits(max_bytes=20 * 1024 * 1024, min_dim=10, max_dim=16000)
MAX_LISTED_ISSUES = 50
# distinct categories of all the files together: the largest quota (docs/wire-contract.md#limits)
MAX_CATEGORIES = max(quota.max_categories for quota in QUOTAS.values())

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
    # messages quote user input only as short prefixes; the cap keeps any other text bounded too
    return [Problem(code=issue.code, target=shown(f"{prefix}.{issue.target}" if issue.target else prefix, 300),
                    message=shown(issue.message, limits.MAX_PROBLEM_MESSAGE)) for issue in issues]


def fit_for_storage(validation: DatasetValidation) -> DatasetValidation:
    """The summary with fewer listed errors and warnings if it would not fit its share of the
    dataset's record (docs/wire-contract.md#limits); the counts stay whole."""
    errors, warnings = list(validation.errors), list(validation.warnings)
    while json_bytes(validation.model_dump(mode="json")) > limits.VALIDATION_MAX_BYTES:
        if warnings:
            warnings = warnings[: len(warnings) // 2]
        elif len(errors) > 1:
            errors = errors[: len(errors) // 2]
        else:  # only the category list is left, and the category limits keep it below the budget
            break
        validation = validation.model_copy(update={"errors": errors, "warnings": warnings})
    return validation


def _merged_categories(checks: list["_FileCheck"]) -> tuple[list[CategoryCount], list[Problem]]:
    """The categories of all files merged by name, and what is wrong with them as a whole."""
    categories: dict[str, CategoryCount] = {}
    for check in checks:
        for category in check.report.categories:
            merged = categories.get(category.name) or CategoryCount(name=category.name)
            categories[category.name] = CategoryCount(
                name=category.name, image_count=merged.image_count + category.image_count,
                annotation_count=merged.annotation_count + category.annotation_count)
    merged_list = list(categories.values())
    problems = []
    if len(merged_list) > MAX_CATEGORIES:
        problems.append(Problem(code="TooManyCategories", target="annotationFileUris",
                                message=f"the annotation files have {len(merged_list)} distinct categories "
                                        f"together; at most {MAX_CATEGORIES} are allowed"))
    chars = sum(len(c.name) for c in merged_list)
    if chars > MAX_CATEGORY_NAMES_CHARS:
        problems.append(Problem(code="CategoryNamesTooLong", target="annotationFileUris",
                                message=f"the category names of the annotation files take {chars} characters "
                                        f"together; at most {MAX_CATEGORY_NAMES_CHARS} are allowed"))
    if problems:  # invalid anyway: keep what is stored bounded
        merged_list, kept = [], 0
        for category in categories.values():
            kept += len(category.name)
            if len(merged_list) == MAX_CATEGORIES or kept > MAX_CATEGORY_NAMES_CHARS:
                break
            merged_list.append(category)
    return merged_list, problems


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

    def locate_all(self, uris: list[str]) -> list[BlobLocation]:
        """Every URI's blob, each listed once (docs/wire-contract.md#limits): a file listed twice
        would be read and counted twice, so it is refused rather than silently dropped."""
        if len(uris) > limits.MAX_ANNOTATION_FILES:
            raise AnnotationFileUnreadable(limits.MAX_ANNOTATION_FILES,
                                           f"{len(uris)} annotation files; at most {limits.MAX_ANNOTATION_FILES} "
                                           "are allowed")
        locations: list[BlobLocation] = []
        first: dict[BlobLocation, int] = {}
        for index, uri in enumerate(uris):
            location = self.files.locate(uri, index)
            if location in first:
                raise AnnotationFileUnreadable(
                    index, f"annotationFileUris[{index}] names the same file as annotationFileUris[{first[location]}]; "
                           "list each annotation file once")
            first[location] = index
            locations.append(location)
        return locations

    def read(self, location: BlobLocation, index: int, left: int) -> bytes:
        """The file's bytes, within what is left of the dataset's byte budget."""
        try:
            return self.reader.read(location, min(left, MAX_ANNOTATION_FILE_BYTES))
        except BlobReadError as exc:
            if exc.code == "BlobTooLarge" and exc.size is not None and exc.size <= MAX_ANNOTATION_FILE_BYTES:
                message = (f"annotationFileUris[{index}] is {exc.size} bytes and only {max(left, 0)} are left: the "
                           f"annotation files of a dataset may hold {limits.MAX_ANNOTATION_BYTES_PER_DATASET} bytes "
                           "together")
            else:
                message = f"annotationFileUris[{index}]: {exc.message}"
            raise AnnotationFileUnreadable(index, message) from None

    def check_file(self, index: int, location: BlobLocation, expected_kind: AnnotationKind | None,
                   data: bytes) -> _FileCheck:
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
        """Raises AnnotationFileUnreadable for a URI that can't be read at all, is listed twice, or is
        past the dataset's limits on files and bytes (docs/wire-contract.md#limits)."""
        locations = self.locate_all(uris)
        checks, left = [], limits.MAX_ANNOTATION_BYTES_PER_DATASET
        for index, location in enumerate(locations):
            data = (preloaded or {}).get(index)
            if data is None:
                data = self.read(location, index, left)
            left -= len(data)
            checks.append(self.check_file(index, location, expected_kind, data))
            del data  # one file's bytes at a time
        kinds = {c.report.annotation_kind for c in checks if c.report.annotation_kind is not None}
        errors = [e for c in checks for e in c.errors]
        error_count = sum(c.error_count for c in checks)
        if len(kinds) > 1:
            errors.append(Problem(code="KindMismatch", target="annotationFileUris",
                                  message="the annotation files mix classification and object detection"))
            error_count += 1
        categories, problems = _merged_categories(checks)
        errors += problems
        error_count += len(problems)
        consistent = len(kinds) <= 1 and not problems
        if consistent and all(c.usable_for_training for c in checks):
            status: Status = "valid"
        elif consistent and all(c.usable_for_evaluation for c in checks):
            status = "evaluationOnly"
        else:
            status = "invalid"
        depths = {c.depth for c in checks}
        depth = "structure" if "structure" in depths else "sample" if "sample" in depths else "full"
        return fit_for_storage(DatasetValidation(
            status=status,
            depth=depth,
            annotation_kind=next(iter(kinds)) if len(kinds) == 1 else expected_kind,
            multilabel=any(c.report.multilabel for c in checks),
            image_count=sum(c.report.image_count for c in checks),
            annotation_count=sum(c.report.annotation_count for c in checks),
            images_checked=sum(c.images_checked for c in checks),
            categories=categories,
            errors=errors[:MAX_LISTED_ISSUES],
            warnings=[w for c in checks for w in c.warnings][:MAX_LISTED_ISSUES],
            error_count=error_count,
            warning_count=sum(c.warning_count for c in checks),
        ))
