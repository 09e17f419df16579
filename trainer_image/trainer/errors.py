"""Why a training run ends without a model. The failures subclass the runner's
(``loupe.runner.training``), so the orchestration records the retired service's
``model.error.code`` (docs/wire-contract.md#training-errors) without knowing the trainer."""

from __future__ import annotations

import math

from loupe.enums import TrainingErrorCode
from loupe.runner.training import TrainingCancelled, TrainingFailed


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.4g} h"


class NotEnoughBudget(TrainingFailed):
    """Raised before training starts when the time left cannot fit the minimum training run.

    ``suggested_seconds`` is a whole number of hours (the API takes ``timeBudgetInHours`` as an
    integer, at least 1).
    """

    code = TrainingErrorCode.NOT_ENOUGH_BUDGET

    def __init__(
        self, *, minimum_seconds: float, suggested_seconds: float, available_seconds: float, images: int
    ) -> None:
        self.minimum_seconds = float(minimum_seconds)
        self.suggested_seconds = float(suggested_seconds)
        self.available_seconds = float(available_seconds)
        self.images = images
        super().__init__(
            f"the time budget is too small for {images} training images: "
            f"{max(0.0, available_seconds):.0f} s are left, the minimum is {_hours(minimum_seconds)} "
            f"({math.ceil(minimum_seconds)} s); suggested budget: {_hours(suggested_seconds)} "
            f"({math.ceil(suggested_seconds)} s)"
        )


class Diverged(TrainingFailed):
    """The loss became NaN or infinite and lowering the learning rate did not recover it."""

    code = TrainingErrorCode.DIVERGED


class Cancelled(TrainingCancelled):
    """The run was asked to stop (cancel, SIGTERM) before it finished."""


class ImagesRejected(TrainingFailed):
    """Training images that cannot be used (unreadable, too large, ...): datasetCorrupt."""

    code = TrainingErrorCode.DATASET_CORRUPT

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        shown = "; ".join(f"{name}: {why}" for name, why in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"{len(problems)} training image(s) cannot be used: {shown}{more}")
