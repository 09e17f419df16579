"""COCO dataset validation, shared by the HTTP API, the blob-triggered function and the trainer.

Two depths (docs/architecture.md): ``validate_coco`` checks the whole file's structure (schema, ids,
references, boxes, quotas) without fetching anything; ``check_images`` then fetches and decodes
every image, or a seeded sample of a large dataset.
"""

from loupe.coco.image_check import (
    IMAGE_ACCESS_DENIED,
    IMAGE_FETCH_FAILED,
    IMAGE_NOT_FOUND,
    ImageFetchError,
    check_images,
    image_limits_for,
)
from loupe.coco.issues import Issue, IssueCollector
from loupe.coco.parsing import MAX_COCO_BYTES
from loupe.coco.quotas import QUOTAS, Purpose, Quota, quota_for
from loupe.coco.report import CategorySummary, CocoReport, ImageCheckResult, ImageEntry
from loupe.coco.structure import parse_and_validate, validate_coco

__all__ = [
    "IMAGE_ACCESS_DENIED",
    "IMAGE_FETCH_FAILED",
    "IMAGE_NOT_FOUND",
    "MAX_COCO_BYTES",
    "QUOTAS",
    "CategorySummary",
    "CocoReport",
    "ImageCheckResult",
    "ImageEntry",
    "ImageFetchError",
    "Issue",
    "IssueCollector",
    "Purpose",
    "Quota",
    "check_images",
    "image_limits_for",
    "parse_and_validate",
    "quota_for",
    "validate_coco",
]
