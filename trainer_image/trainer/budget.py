"""The time budget: the service's minimum (docs/wire-contract.md#training-budget) and the trainer's own measured
estimate, checked before any training work starts."""

from __future__ import annotations

from loupe.budget import (  # noqa: F401 (re-exported for the ML code)
    CLASSIFIER_HOURS_PER_IMAGE,
    DETECTOR_HOURS_PER_IMAGE,
    service_minimum_seconds,
    suggested_seconds,
)
from trainer.errors import NotEnoughBudget


def check_budget(
    *,
    images: int,
    available_seconds: float,
    estimated_seconds: float,
    hours_per_image: float = CLASSIFIER_HOURS_PER_IMAGE,
) -> float:
    """Raise NotEnoughBudget when the time left is below the larger of the service's minimum and
    our own estimate of the shortest useful run; returns that minimum."""
    minimum = max(service_minimum_seconds(images, hours_per_image=hours_per_image), estimated_seconds)
    if available_seconds < minimum:
        raise NotEnoughBudget(
            minimum_seconds=minimum,
            suggested_seconds=suggested_seconds(minimum),
            available_seconds=available_seconds,
            images=images,
        )
    return minimum
