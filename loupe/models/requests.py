"""Model request bodies (docs/wire-contract.md#models)."""
from __future__ import annotations

from pydantic import Field, StrictInt

from loupe.enums import ModelKind
from loupe.wire import WireModel

MIN_BUDGET_HOURS = 1
MAX_BUDGET_HOURS = 1344


class TrainingParametersIn(WireModel):
    training_dataset_name: str = Field(min_length=1)
    time_budget_in_hours: StrictInt = Field(ge=MIN_BUDGET_HOURS, le=MAX_BUDGET_HOURS)
    model_kind: ModelKind | None = None
    # beyond the retired API: train for export packages (docs/exports.md#letterbox-trained-detectors)
    exportable: bool = False


class EvaluationParametersIn(WireModel):
    test_dataset_name: str = Field(min_length=1)


class ModelIn(WireModel):
    name: str | None = None
    training_parameters: TrainingParametersIn
    evaluation_parameters: EvaluationParametersIn | None = None
