"""Dataset quotas of the retired service, per annotation kind and purpose (docs/wire-contract.md#limits)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from loupe.enums import AnnotationKind


class Purpose(str, Enum):
    TRAINING = "training"
    EVALUATION = "evaluation"


@dataclass(frozen=True)
class Quota:
    # Distinct images each category needs. The official checker counts *annotations* per category
    # under this name; Loupe counts images, which is what the name and the docs say (two boxes on
    # one photo are still one example).
    min_images_per_category: int
    max_images: int
    min_dim: int
    max_dim: int
    min_categories: int
    max_categories: int
    max_regions_per_image: int | None


# Numbers from the official checker (check_coco_annotations.py), with three deliberate changes:
# - detection category ceiling: the checker allows 2000, the published quota table says 1000 for
#   object detection; Loupe keeps the documented one.
# - evaluation minimum width/height: the checker's 50 px is the prediction API's minimum; Loupe
#   evaluates with its own decoder, so an evaluation set may hold what a training set may (10 px;
#   e.g. CIFAR-style 32x32 test sets).
# - the checker compares the total image count with the per-category minimum (a bug); Loupe
#   requires at least one image and checks the per-category minimum for each category.
QUOTAS: dict[tuple[AnnotationKind, Purpose], Quota] = {
    (AnnotationKind.CLASSIFICATION, Purpose.TRAINING): Quota(2, 1_000_000, 10, 10240, 2, 2000, None),
    (AnnotationKind.CLASSIFICATION, Purpose.EVALUATION): Quota(1, 100_000, 10, 16000, 2, 2000, None),
    (AnnotationKind.DETECTION, Purpose.TRAINING): Quota(1, 200_000, 10, 10240, 1, 1000, 1000),
    (AnnotationKind.DETECTION, Purpose.EVALUATION): Quota(1, 100_000, 10, 16000, 1, 1000, 1000),
}


def quota_for(kind: AnnotationKind, purpose: Purpose) -> Quota:
    return QUOTAS[(AnnotationKind(kind), Purpose(purpose))]


def dimension_range(purpose: Purpose) -> tuple[int, int]:
    """Width/height bounds; the same for both kinds."""
    q = QUOTAS[(AnnotationKind.CLASSIFICATION, Purpose(purpose))]
    return q.min_dim, q.max_dim


# Loupe's own limits on what a file may hold beyond the quotas (docs/wire-contract.md#limits): a
# category name becomes a tag name, stored with the dataset's validation and echoed in results;
# all of them together must fit the dataset's record (a Table entity, 1 MiB).
MAX_CATEGORY_NAME_LENGTH = 255
MAX_CATEGORY_NAMES_CHARS = 65_536
# An image URL (absolute_url / coco_url): a blob name is at most 1024 characters, percent-encoded
# up to three times that, plus the account and container.
MAX_URL_LENGTH = 4_096
