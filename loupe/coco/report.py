"""Results of COCO validation: what the API stores in a dataset's status and shows to users."""

from __future__ import annotations

from typing import Literal, NamedTuple

from pydantic import BaseModel, Field, SkipValidation

from loupe.coco.issues import Issue
from loupe.enums import AnnotationKind
from loupe.errors import shown


class CategorySummary(BaseModel):
    id: int
    name: str
    image_count: int
    annotation_count: int


class ImageEntry(NamedTuple):
    """An image whose location passed validation: what an image fetcher needs.

    ``url`` is ``absolute_url`` (or else ``coco_url``) when the file gives one; otherwise
    ``file_name`` is a safe relative path, resolved against the COCO file's folder.
    ``id``, ``width`` and ``height`` are 0 where the file's values were invalid.
    A NamedTuple because a quota-sized file makes 200,000 of them.
    """

    index: int  # position in the file's "images" list
    id: int
    file_name: str
    url: str | None
    width: int
    height: int

    @property
    def target(self) -> str:
        return f"images[{self.index}]"

    def describe(self) -> str:
        where = f"url '{shown(self.url)}'" if self.url else f"file_name '{shown(self.file_name)}'"
        return f"images[{self.index}] ({where})"


class CocoReport(BaseModel):
    annotation_kind: AnnotationKind | None  # declared, else inferred: any bbox -> detection
    multilabel: bool  # classification with an image carrying more than one distinct category
    image_count: int
    annotation_count: int
    category_count: int
    categories: list[CategorySummary]
    errors: list[Issue]  # capped; error_count has the total
    warnings: list[Issue]
    error_count: int
    warning_count: int
    # Not part of the JSON: the images to fetch for the image checks (thousands of entries).
    images: SkipValidation[list[ImageEntry]] = Field(default_factory=list, exclude=True, repr=False)

    @property
    def ok(self) -> bool:
        return self.error_count == 0


class ImageCheckResult(BaseModel):
    # full: every image was fetched and decoded; sample: a seeded random sample; none: nothing checked
    depth: Literal["full", "sample", "none"]
    checked: int
    total: int
    errors: list[Issue]
    warnings: list[Issue]
    error_count: int
    warning_count: int

    @property
    def ok(self) -> bool:
        return self.error_count == 0
