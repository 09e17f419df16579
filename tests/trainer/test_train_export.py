"""End to end on tiny generated images: train, export, and check the artifact contract."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from trainer.classification import ExportCheckFailed, export_classifier, train_classifier
from trainer.classification.export import verify_onnx
from trainer.context import LocalContext

from loupe.artifacts import (
    LABELS_FILE,
    MODEL_FILE,
    PREPROCESSING_FILE,
    Preprocessing,
    holdout_from_json,
    labels_from_json,
)
from loupe.imaging import TRAINING_LIMITS, decode_image
from loupe.preprocess import to_input
from tests.trainer.conftest import FAST, SHAPES


def _onnx_scores(model_dir, images) -> np.ndarray:
    pre = Preprocessing.model_validate_json((model_dir / PREPROCESSING_FILE).read_text())
    session = ort.InferenceSession(str(model_dir / MODEL_FILE), providers=["CPUExecutionProvider"])
    batch = np.stack(
        [to_input(decode_image(e.path.read_bytes(), TRAINING_LIMITS)[0], pre)[0] for e in images]
    )
    return session.run(["scores"], {"image": batch})[0]


def test_multiclass_default_recipe_trains_exports_and_verifies(shapes, tmp_path):
    ctx = LocalContext.with_budget(300, seed=1)
    result = train_classifier(
        shapes, SHAPES, multilabel=False, context=ctx, options=replace(FAST, views=None, epochs=12)
    )
    stats = result.stats
    assert stats.views == 10 and stats.finetune_epochs_planned == 12 and not stats.budget_limited
    assert stats.passes == ["split", "final"] and stats.final_model == "final"
    # the estimate: the linear head's out-of-fold predictions of every image, or the fine-tuned
    # split pass's on its held-out images (one per class)
    if stats.method == "finetune":
        assert result.holdout.source == "split" and sorted(result.holdout.targets.tolist()) == [0, 1, 2]
    else:
        assert result.holdout.source == "crossValidation" and len(result.holdout.examples) == len(shapes)
    assert result.holdout.scores.shape == (stats.holdout_images, 3) and stats.holdout_source == result.holdout.source
    assert np.allclose(result.holdout.scores.sum(1), 1, atol=1e-5)
    phases = [event[1] for event in ctx.events]
    for phase in ("preparing", "extracting features", "training"):
        assert phase in phases

    out = tmp_path / "model"
    figures = export_classifier(result, out)
    assert figures["max_abs_diff"] <= 1e-4
    graph = onnx.load(str(out / MODEL_FILE))
    assert graph.opset_import[0].version >= 17
    (inp,), (outp,) = graph.graph.input, graph.graph.output
    assert inp.name == "image" and outp.name == "scores"
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims[1:] == [3, 224, 224] and isinstance(dims[0], str)  # dynamic batch axis
    assert labels_from_json((out / LABELS_FILE).read_bytes()) == SHAPES
    pre = Preprocessing.model_validate_json((out / PREPROCESSING_FILE).read_text())
    assert pre.task == "multiclass" and pre.size == (224, 224) and pre.output_names == ["scores"]

    scores = _onnx_scores(out, shapes)
    assert scores.shape == (12, 3) and np.allclose(scores.sum(1), 1, atol=1e-5)  # softmax inside the graph
    accuracy = (scores.argmax(1) == [e.labels[0] for e in shapes]).mean()
    assert accuracy >= 11 / 12
    # the same numbers as the torch model on the same preprocessed inputs
    with torch.no_grad():
        torch_scores = result.model(
            torch.from_numpy(
                np.stack(
                    [to_input(decode_image(e.path.read_bytes(), TRAINING_LIMITS)[0], pre)[0] for e in shapes]
                )
            )
        ).numpy()
    assert np.abs(torch_scores - scores).max() <= 1e-4


def test_multilabel_uses_sigmoid_and_learns_every_label(multilabel_shapes, tmp_path):
    ctx = LocalContext.with_budget(300, seed=2)
    result = train_classifier(
        multilabel_shapes, SHAPES, multilabel=True, context=ctx, options=replace(FAST, epochs=6)
    )
    assert result.holdout is not None and result.holdout.targets.shape[1] == 3
    out = tmp_path / "model"
    export_classifier(result, out)
    assert Preprocessing.model_validate_json((out / PREPROCESSING_FILE).read_text()).task == "multilabel"
    scores = _onnx_scores(out, multilabel_shapes)
    assert scores.shape == (12, 3)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert not np.allclose(scores.sum(1), 1, atol=1e-3)  # independent sigmoids, not a softmax
    truth = np.zeros((12, 3), dtype=bool)
    for i, e in enumerate(multilabel_shapes):
        truth[i, e.labels] = True
    # every label is ranked: present labels score above absent ones on the training images
    for label in range(3):
        assert scores[truth[:, label], label].min() > scores[~truth[:, label], label].max()


def test_given_holdout_is_predicted_and_all_images_train(shapes):
    ctx = LocalContext.with_budget(300)
    result = train_classifier(
        shapes[:9] + shapes[10:], SHAPES, multilabel=False, context=ctx, options=FAST, holdout=[shapes[9]]
    )
    assert result.stats.passes == ["split", "final"] and result.stats.holdout_source == "given"
    assert result.holdout is not None and result.holdout.source == "given"
    assert [p.name for p in result.holdout.images] == [shapes[9].path.name]
    assert result.holdout.scores.argmax(1).tolist() == [2]
    # holdout.json: the given images, keyed by their COCO file names, with the scores measured
    holdout = result.holdout_predictions()
    assert holdout.source == "given" and holdout.task == "multiclass" and holdout.labels == SHAPES
    (image,) = holdout.images
    assert image.key == shapes[9].key and image.truth_labels == [2]
    assert image.scores == pytest.approx(result.holdout.scores[0].tolist())


def test_export_check_fails_when_the_graph_and_the_model_disagree(shapes, tmp_path):
    result = train_classifier(
        shapes, SHAPES, multilabel=False, context=LocalContext.with_budget(300), options=FAST
    )
    export_classifier(result, tmp_path)
    other = train_classifier(
        shapes,
        SHAPES,
        multilabel=False,
        context=LocalContext.with_budget(300, seed=5),
        options=replace(FAST, lr=3e-3, head="power-views"),  # another head: another model
    )
    with pytest.raises(ExportCheckFailed, match="disagree"):
        verify_onnx(
            other.model,
            tmp_path / MODEL_FILE,
            result.check_inputs,
            input_name="image",
            output_name="scores",
            num_classes=3,
            input_shape=(3, 224, 224),
        )
    with pytest.raises(ExportCheckFailed, match="expected"):
        verify_onnx(
            result.model,
            tmp_path / MODEL_FILE,
            result.check_inputs,
            input_name="pixels",
            output_name="scores",
            num_classes=3,
            input_shape=(3, 224, 224),
        )
    assert json.loads((tmp_path / LABELS_FILE).read_text()) == SHAPES


def test_the_recipe_returns_a_trained_model_the_runner_can_use(multilabel_shapes, tmp_path):
    """Through the registry, as a job fits: multilabel from the data, then the TrainedModel
    protocol (export, holdout_performance, report)."""
    from trainer.recipes import get_recipe

    from loupe.enums import ModelKind

    ctx = LocalContext.with_budget(300, seed=2)
    result = get_recipe(ModelKind.CLASSIFIER).fit(multilabel_shapes, SHAPES, context=ctx, options=FAST)
    assert result.multilabel  # images with two labels make it a multilabel classifier
    result.export(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [LABELS_FILE, MODEL_FILE, PREPROCESSING_FILE]
    assert any(event[1] == "exporting" for event in ctx.events)  # export reports into the run's progress
    percents = [event[2] for event in ctx.events]
    assert percents == sorted(percents), percents  # work done never goes back (the split pass's evaluation)
    performance = result.holdout_performance()
    assert set(performance["tagPerformance"]) == set(SHAPES) and "averagePrecision" in performance
    report = json.loads(json.dumps(result.report()))
    assert report["views"] == 2 and report["passes"] == ["split", "final"] and report["feature_extractions"] == 24
    # holdout.json's content: the images behind the estimate, keyed by their COCO file names, a score per label
    holdout = holdout_from_json(result.holdout_predictions().to_json())
    assert holdout.task == "multilabel" and holdout.labels == SHAPES
    assert holdout.source == ("split" if report["method"] == "finetune" else "crossValidation")
    assert len(holdout.images) == report["holdout_images"] > 0
    by_key = {example.key: example for example in multilabel_shapes}
    for image, scores in zip(holdout.images, result.holdout.scores, strict=True):
        assert image.truth_labels == sorted(by_key[image.key].labels)
        assert image.scores == pytest.approx(scores.tolist()) and len(image.scores) == len(SHAPES)
