"""The trainer's one interface: recipes by model kind, the job's fit, the failures the runner maps,
the starting-point registry, the classifier's typed checkpoint state - and the code rules."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from trainer import recipes
from trainer.classification import TrainOptions, train_classifier
from trainer.classification.checkpoint import STATE_NAME, PassProgress, PassResult, RunCheckpoints, RunState
from trainer.classification.finetune import FinetuneState
from trainer.context import LocalContext, MemoryCheckpointStore
from trainer.detection import DetectorOptions, train_detector
from trainer.errors import Cancelled, Diverged, ImagesRejected, NotEnoughBudget
from trainer.job import fit_job
from trainer.starting_points import available_starting_points, starting_point

from loupe.enums import AnnotationKind, ModelKind, TrainingErrorCode
from loupe.jobs.spec import JobOutput, JobSpec
from loupe.paths import REPO_ROOT, TRAINER_PATH
from loupe.runner.examples import Example, LocalDataset
from loupe.runner.training import TrainingCancelled, TrainingFailed


def test_every_model_kind_the_api_trains_has_a_recipe():
    found = recipes.available_recipes()
    assert found[ModelKind.CLASSIFIER].fit is train_classifier
    assert found[ModelKind.CLASSIFIER].options is TrainOptions
    assert found[ModelKind.DETECTOR].fit is train_detector
    assert found[ModelKind.DETECTOR].options is DetectorOptions
    with pytest.raises(recipes.UnknownRecipe, match="no training recipe for model kind 'Product-Recognizer'") as info:
        recipes.get_recipe(ModelKind.PRODUCT_RECOGNIZER)
    assert isinstance(info.value, TrainingFailed)


@pytest.mark.parametrize(("kind", "loaded", "not_loaded"), [
    (ModelKind.CLASSIFIER, "trainer.classification.train", "torchvision"),
    (ModelKind.DETECTOR, "trainer.detection.train", "trainer.classification.train"),
])
def test_a_job_imports_only_the_recipe_of_its_kind(kind, loaded, not_loaded):
    """A classifier's time to model does not pay for torchvision's detection models (2.5 s of
    imports on a small machine), in a fresh interpreter as a job starts."""
    code = ("import sys; from trainer.recipes import get_recipe; from loupe.enums import ModelKind; "
            f"get_recipe(ModelKind({kind.value!r})); print(sorted(m for m in sys.modules if m.startswith(("
            f"{loaded!r}, {not_loaded!r}))))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(TRAINER_PATH)]))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr([loaded]), done.stdout


class Recorded:
    """A recipe that records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, examples, labels, *, context, starting_point=None, holdout=None, options=None):
        self.calls.append((examples, labels, context, starting_point, holdout, options))
        return "model"


@pytest.fixture
def fake_classifier(monkeypatch):
    fake = Recorded()
    registered = dict(recipes.available_recipes())
    monkeypatch.setattr(recipes, "_RECIPES", registered)
    assert recipes.register_recipe(ModelKind.CLASSIFIER, options=dict)(fake) is fake  # a decorator
    return fake


def _spec(**changes) -> JobSpec:
    return JobSpec(model_name="m", run_id="r", model_kind=ModelKind.CLASSIFIER, budget_seconds=60,
                   output=JobOutput(container="models", prefix="m/"), **changes)


def test_the_job_fits_with_the_recipe_of_the_model_kind(fake_classifier):
    assert recipes.get_recipe(ModelKind.CLASSIFIER).fit is fake_classifier
    assert recipes.get_recipe(ModelKind.CLASSIFIER).description == "A recipe that records its calls."
    train = LocalDataset("d", AnnotationKind.CLASSIFICATION, ["a", "b"], [Example(Path("x.jpg"), labels=[0])])
    context = LocalContext.with_budget(60)
    assert fit_job(_spec(), train, context) == "model"
    assert fit_job(_spec(backbone="resnet50"), train, context) == "model"
    (examples, labels, ctx, default, holdout, options), (*_, chosen, _, _) = fake_classifier.calls
    assert examples is train.images and labels == ["a", "b"] and ctx is context
    assert default is None and chosen == "resnet50"  # the spec's default leaves the choice to the recipe
    assert holdout is None and options is None  # a test set is the runner's, never the recipe's


def test_trainer_failures_are_the_runners_with_their_codes():
    budget = NotEnoughBudget(minimum_seconds=10, suggested_seconds=3600, available_seconds=1, images=3)
    failures = [(budget, TrainingErrorCode.NOT_ENOUGH_BUDGET), (Diverged("nan"), TrainingErrorCode.DIVERGED),
                (ImagesRejected([("a.jpg", "truncated")]), TrainingErrorCode.DATASET_CORRUPT)]
    for error, code in failures:
        assert isinstance(error, TrainingFailed) and error.code is code
    assert "a.jpg: truncated" in str(failures[2][0]) and "3 training images" in str(budget)
    assert isinstance(Cancelled("stop"), TrainingCancelled)


def test_one_registry_names_backbones_and_detectors():
    backbones, detectors = available_starting_points("backbone"), available_starting_points("detector")
    assert "efficientnet_lite0" in backbones and "fasterrcnn_resnet50_fpn_v2_coco" in detectors
    assert available_starting_points() == {**backbones, **detectors}
    assert starting_point("efficientnet_lite0").kind == "backbone"
    point = starting_point("fasterrcnn_mobilenet_v3_large_fpn_coco")
    assert point.kind == "detector" and point.torchvision_weights.endswith(".COCO_V1") and point.build is not None


def test_the_classifier_state_round_trips_typed_and_foreign_states_are_ignored():
    finetune = FinetuneState(epoch=2, step=1, lr_scale=0.3, recoveries=1, weights={"head.weight": torch.ones(2, 3)},
                             optimizer={"state": {}, "param_groups": []})
    state = RunState(views=3, epochs=12, passes={
        "split": PassResult({"head.bias": torch.zeros(2)}, "linear", {"linear": (1.0, -0.5)}, torch.eye(2)),
        "final": PassProgress({"bias": torch.ones(2)}, finetune)})
    store = MemoryCheckpointStore()
    RunCheckpoints(store, "key").save_state(state)
    back = RunCheckpoints(store, "key").load_state()
    assert back.views == 3 and back.epochs == 12 and set(back.passes) == {"split", "final"}
    split, final = back.passes["split"], back.passes["final"]
    assert isinstance(split, PassResult) and split.method == "linear" and split.selection == {"linear": (1.0, -0.5)}
    assert torch.equal(split.holdout_scores, torch.eye(2))
    assert isinstance(final, PassProgress) and final.finetune.epoch == 2 and final.finetune.lr_scale == 0.3
    assert torch.equal(final.finetune.weights["head.weight"], torch.ones(2, 3))
    assert RunCheckpoints(store, "other key").load_state() is None
    # a state of the dict-based format (classifier-1) under the same key: ignored, not a crash
    from trainer.classification.checkpoint import to_bytes

    store.save(STATE_NAME, to_bytes({"key": "key", "views": 3, "passes": {}}))
    assert RunCheckpoints(store, "key").load_state() is None
