"""The retired service's minimum training budget (from its FAQ; docs/wire-contract.md#training-budget), shared by the
API (checked when a model is created) and the trainer (checked against the time really left)."""
from __future__ import annotations

import math

from loupe.enums import ModelKind

# minimum hours per training image
HOURS_PER_IMAGE = {ModelKind.CLASSIFIER: 0.0003334, ModelKind.DETECTOR: 0.0066667}
CLASSIFIER_HOURS_PER_IMAGE = HOURS_PER_IMAGE[ModelKind.CLASSIFIER]
DETECTOR_HOURS_PER_IMAGE = HOURS_PER_IMAGE[ModelKind.DETECTOR]


def service_minimum_seconds(images: int, *, hours_per_image: float = CLASSIFIER_HOURS_PER_IMAGE) -> float:
    """The retired service's documented minimum budget for a dataset of this size."""
    return hours_per_image * images * 3600.0


def suggested_seconds(minimum_seconds: float) -> float:
    """Twice the minimum, in whole hours (the API takes an integer timeBudgetInHours >= 1)."""
    return 3600.0 * max(1, math.ceil(2 * minimum_seconds / 3600.0))


def budget_problem(kind: ModelKind, images: int, budget_hours: int) -> str | None:
    """The notEnoughBudget message when ``budget_hours`` is below the minimum for ``images``."""
    minimum = service_minimum_seconds(images, hours_per_image=HOURS_PER_IMAGE[kind])
    if budget_hours * 3600.0 >= minimum:
        return None
    return (f"the time budget of {budget_hours} h is too small for {images} training images: the minimum is "
            f"{minimum / 3600:.4g} h ({math.ceil(minimum)} s); suggested budget: "
            f"{suggested_seconds(minimum) / 3600:.0f} h")
