"""The job entry point (``python -m trainer``): the orchestration is the core's
(``loupe.runner.main``: read the JobSpec, download, fit, export, score, upload, report); the
trainer supplies ``fit_job``, which trains with the recipe registered for the spec's model kind
(``trainer.recipes``), and ``package_job``, which builds an export package (``trainer.packages``)."""
from __future__ import annotations

import importlib
import logging
from pathlib import Path

from loupe.jobs.spec import JobSpec
from loupe.runner import main as runner
from loupe.runner.examples import LocalDataset
from loupe.runner.export import PackageCache, PackageFailed
from loupe.runner.training import JobContext, TrainedModel
from trainer.recipes import available_recipes, get_recipe

log = logging.getLogger("trainer")


def fit_job(spec: JobSpec, train: LocalDataset, context: JobContext) -> TrainedModel:
    """``loupe.runner.training.Fit``: train ``spec.model_kind``'s recipe on the downloaded
    training set. The spec's default backbone leaves the starting point to the recipe (a
    detector prefers COCO weights baked into the image); any other name is used as given. A test
    set, when the spec names one, is never passed: the runner scores the exported model on it."""
    # torch is imported here, not at start-up: the run reports `running` within a second
    from trainer.starting_points import DEFAULT_BACKBONE

    recipe = get_recipe(spec.model_kind)
    starting_point = None if spec.backbone == DEFAULT_BACKBONE else spec.backbone
    # a classifier's kind as its owner fixed it (the classifier recipe's ``multilabel``)
    extra: dict = {"multilabel": spec.multilabel} if spec.multilabel is not None else {}
    if spec.input_resize is not None:  # a detector trained for export packages (its options' ``resize``)
        extra["options"] = recipe.options(resize=spec.input_resize)
    log.info("training %s with recipe %s on %d images (%d categories)", spec.model_kind.value, recipe.name,
             len(train.images), len(train.labels))
    return recipe.fit(train.images, train.labels, context=context, starting_point=starting_point, **extra)


def package_job(model_folder: Path, out_zip: Path, platform: str, flavor: str | None, cache: PackageCache) -> object:
    """``loupe.runner.export.PackageFn``: the export package; a PackageError becomes the run's reason."""
    # onnx and openvino are imported here: a training job never needs them
    from trainer.packages import PackageError, build_package

    try:
        return build_package(model_folder, out_zip, platform, flavor, cache=cache)
    except PackageError as exc:
        raise PackageFailed(str(exc)) from None


def warm_imports() -> None:
    """What a standby trainer imports before it is given a job (docs/training.md#time-to-model):
    torch, both recipes, and torch._dynamo, which the first torch optimizer imports (2.2 s)."""
    for module in ("torch", "torch._dynamo", "trainer.starting_points"):
        importlib.import_module(module)
    available_recipes()


def main(argv: list[str] | None = None) -> int:
    return runner.main(fit_job, argv, package=package_job, warm=warm_imports)
