"""Training recipes by model kind (in the style of timm's model registry and AutoGluon's ``fit``).

A recipe is ONE function, registered for a ``loupe.enums.ModelKind``::

    @register_recipe(ModelKind.CLASSIFIER, options=TrainOptions)
    def train_classifier(examples, labels, *, context, starting_point=None, holdout=None,
                         options=None) -> ClassifierResult: ...

- ``examples``: the training images (``loupe.runner.examples.Example``: ``labels`` for a
  classifier, ``boxes`` for a detector); ``labels``: the category names, label i is labels[i].
- ``context``: a ``trainer.context.TrainingContext`` (the job's ``JobContext``, or a
  ``LocalContext``): seed, progress, cancellation, checkpoints - and the budget. The budget is
  ``context.deadline`` (a ``time.monotonic()`` instant by which training *and* export have
  ended): there is no separate budget argument, so what earlier attempts of the run spent and
  what the orchestration keeps for scoring and upload are accounted for in one place. A recipe
  refuses a deadline too close to train anything useful (``NotEnoughBudget``, before any work)
  and otherwise ends training in time; the budget is a ceiling, not a target.
- ``starting_point``: a name of ``trainer.starting_points``; None: the recipe's own choice.
- ``holdout``: labelled images never trained on, that measure (and steer) the run; None: the
  recipe splits its own off ``examples`` (``trainer.split.holdout_split``).
- ``options``: the recipe's options dataclass (``Recipe.options``); None: its defaults.

Recipes may take more keyword arguments with defaults (the classifier's ``multilabel``).
What a recipe returns is a ``loupe.runner.training.TrainedModel``: ``export(folder)``,
``holdout_performance()``, ``report()``, and optionally ``holdout_predictions()`` (the per-image
held-out scores behind the performance, written as ``holdout.json``). Failures are ``trainer.errors`` (subclasses of the
runner's ``TrainingFailed`` / ``TrainingCancelled``) or ValueError for malformed input.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Protocol

from loupe.enums import ModelKind
from loupe.runner.examples import Example
from loupe.runner.training import TrainedModel, TrainingFailed
from trainer.context import TrainingContext

# modules whose import registers the built-in recipes; a job imports only its kind's: the
# detector's pulls in torchvision's detection models (2.5 s of a classifier's time to model)
_BUILTIN = {
    ModelKind.CLASSIFIER: "trainer.classification.train",
    ModelKind.DETECTOR: "trainer.detection.train",
}


class RecipeFit(Protocol):
    def __call__(self, examples: list[Example], labels: list[str], *, context: TrainingContext,
                 starting_point: str | None = None, holdout: list[Example] | None = None,
                 options: Any = None) -> TrainedModel: ...


class UnknownRecipe(TrainingFailed):
    """No recipe trains this kind of model."""


@dataclass(frozen=True)
class Recipe:
    kind: ModelKind
    name: str
    fit: RecipeFit
    options: type  # the options dataclass ``fit`` takes
    description: str = ""


_RECIPES: dict[ModelKind, Recipe] = {}


def register_recipe(kind: ModelKind, fit: RecipeFit | None = None, *, options: type,
                    name: str | None = None) -> Any:
    """Register ``fit`` as the recipe for ``kind`` (replacing any before it); without ``fit``, a
    decorator that registers the function it decorates and returns it unchanged."""

    def register(function: RecipeFit) -> RecipeFit:
        doc = (function.__doc__ or "").strip().split("\n")[0]
        _RECIPES[kind] = Recipe(kind, name or getattr(function, "__name__", type(function).__name__), function,
                                options, doc)
        return function

    return register if fit is None else register(fit)


def _load_builtin() -> None:
    for module in _BUILTIN.values():
        importlib.import_module(module)


def available_recipes() -> dict[ModelKind, Recipe]:
    _load_builtin()
    return dict(_RECIPES)


def get_recipe(kind: ModelKind) -> Recipe:
    if kind in _BUILTIN:
        importlib.import_module(_BUILTIN[kind])
    recipes = dict(_RECIPES) if kind in _RECIPES else available_recipes()
    if kind not in recipes:
        known = ", ".join(k.value for k in recipes)
        raise UnknownRecipe(f"no training recipe for model kind '{kind.value}'; recipes exist for {known}")
    return recipes[kind]


__all__ = [
    "Recipe",
    "RecipeFit",
    "UnknownRecipe",
    "available_recipes",
    "get_recipe",
    "register_recipe",
]
