"""With hold-out images the run measures itself, keeps its best weights and can converge early."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from trainer.context import LocalContext
from trainer.detection import train_detector
from trainer.detection.data import to_examples
from trainer.detection.evaluate import HoldoutSet
from trainer.detection.train import ESTIMATE_FRACTION, ESTIMATE_TIME_SHARE
from trainer.split import holdout_split

from loupe.artifacts import holdout_from_json
from tests.trainer_detection.conftest import FAST, LABELS, make_dataset


def test_holdout_picks_the_best_weights_and_reports_their_map(dataset, tmp_path):
    holdout = make_dataset(tmp_path / "holdout", count=4, seed=42, negatives=0)
    options = replace(FAST, min_iterations=30, max_iterations=30, check_every=5)
    # The branch under test needs a run whose last weights are not its best. Whether a given seed
    # gives one depends on float rounding, so try a few seeds and test the first that does.
    for seed in (1, 2, 3, 4, 5):
        result = train_detector(dataset, LABELS, context=LocalContext.with_budget(3600, seed=seed), holdout=holdout,
                                options=options)
        measured = [h["holdout_map50"] for h in result.history if h["holdout_map50"] is not None]
        assert len(measured) >= 3 and result.iterations == 30
        if max(measured) > measured[-1]:
            break
    else:
        pytest.fail("no seed gave a run whose last weights were not its best")
    assert result.holdout_map50 == pytest.approx(max(measured), abs=1e-4)  # the best, not the last, is kept
    check = HoldoutSet(to_examples(holdout, len(LABELS)), result.preprocessing, LABELS)
    assert check.map50(result.model, offset=1) == pytest.approx(result.holdout_map50, abs=1e-6)


def test_holdout_mAP_that_stops_improving_ends_the_run_early(dataset, tmp_path):
    holdout = make_dataset(tmp_path / "holdout", count=2, seed=43, negatives=0)
    # a learning rate too small to make progress: the hold-out mAP stays flat
    options = replace(FAST, learning_rate=1e-7, min_iterations=10, max_iterations=10 ** 6, epochs=10 ** 6,
                      check_every=2, patience=2, decay_fraction=0.0)
    result = train_detector(dataset, LABELS, context=LocalContext.with_budget(3600, seed=1), holdout=holdout,
                            options=options)
    assert result.stop_reason == "converged" and result.iterations < 40


def test_evaluation_is_spread_out_when_the_holdout_is_large(dataset):
    class Fake(HoldoutSet):
        def __init__(self, n):
            self.inputs = [None] * n

    assert Fake(10).every(40) == 1
    assert Fake(120).every(40) == 5  # 120 forward passes ~ 40 samples' training: every 5th check


def test_without_holdout_images_a_share_of_big_categories_is_held_out(tmp_path):
    images = make_dataset(tmp_path / "many", count=24, seed=5, negatives=0)
    examples = to_examples(images, len(LABELS))
    counts = [sum(c in ex.labels for ex in examples) for c in range(len(LABELS))]
    assert min(counts) >= 10
    train, held = holdout_split(examples, len(LABELS), seed=1, fraction=0.2, min_images=10)
    assert sorted(train + held) == list(range(len(examples))) and 2 <= len(held) <= 0.2 * len(examples)
    assert (train, held) == holdout_split(examples, len(LABELS), seed=1, fraction=0.2, min_images=10)
    assert holdout_split(examples, len(LABELS), seed=1, fraction=0.2, min_images=30) == (list(range(24)), [])

    result = train_detector(images, LABELS, context=LocalContext.with_budget(3600, seed=1),
                            options=replace(FAST, min_iterations=10, max_iterations=10, holdout_min_images=10))
    assert result.holdout_images == len(held) and result.train_images == len(examples) - len(held)
    performance = result.holdout_performance()
    assert performance["meanAveragePrecision50"] == pytest.approx(result.holdout_map50)
    assert set(performance) == {"meanAveragePrecision30", "meanAveragePrecision50", "meanAveragePrecision75",
                                "tagPerformance"}
    stats = json.loads(json.dumps(result.report()))
    assert stats["holdout_images"] == len(held) and stats["iterations"] == 10
    # holdout.json: the held-out images' truth and every detection, relative to the image
    holdout = holdout_from_json(result.holdout_predictions().to_json())
    assert holdout.task == "detection" and holdout.source == "split" and holdout.labels == LABELS
    assert [image.key for image in holdout.images] == [images[i].key for i in held]
    assert sum(len(image.detections) for image in holdout.images) > 0
    for image in holdout.images:
        source = next(example for example in images if example.key == image.key)
        assert (image.width, image.height) == (source.width, source.height)
        assert [b[0] for b in image.truth_boxes] == [b[0] for b in source.boxes]
        assert np.allclose([b[1:] for b in image.truth_boxes], [b[1:] for b in source.boxes], atol=1e-9)
        for label, score, left, top, width, height in image.detections:
            assert 0 <= label < len(LABELS) and 0 <= score <= 1
            assert 0 <= left <= left + width <= 1 + 1e-9 and 0 <= top <= top + height <= 1 + 1e-9


def test_few_shot_data_trains_on_every_image_and_estimates_from_a_model_without_some(dataset):
    context = LocalContext.with_budget(3600, seed=1)
    result = train_detector(dataset, LABELS, context=context, options=replace(FAST, min_iterations=2, max_iterations=2))
    assert result.train_images == len(dataset)  # the model served keeps every image
    # the estimate: a model trained the same way without about a third of the images, measured on them
    examples = to_examples(dataset, len(LABELS))
    _, held = holdout_split(examples, len(LABELS), 1, fraction=ESTIMATE_FRACTION, min_images=2)
    assert held and result.holdout_images == len(held)
    holdout = result.holdout_predictions()
    assert holdout.source == "split" and [image.key for image in holdout.images] == [dataset[i].key for i in held]
    assert set(result.holdout_performance()) == {"meanAveragePrecision30", "meanAveragePrecision50",
                                                 "meanAveragePrecision75", "tagPerformance"}
    estimate_progress = [message for _, _, _, message in context.events if message.startswith("estimate")]
    assert estimate_progress  # the estimate pass says what it is doing
    percents = [percent for _, _, percent, _ in context.events]
    assert percents == sorted(percents), percents  # the served model's pass continues where the estimate ended
    assert max(p for _, _, p, m in context.events if m.startswith("estimate")) <= 100 * ESTIMATE_TIME_SHARE


def test_one_image_per_category_is_measured_on_the_training_images(tmp_path):
    images = make_dataset(tmp_path / "one", count=1, seed=7, negatives=0)
    result = train_detector(images, LABELS, context=LocalContext.with_budget(3600, seed=1),
                            options=replace(FAST, min_iterations=2, max_iterations=2))
    holdout = result.holdout_predictions()
    assert holdout.source == "training" and [image.key for image in holdout.images] == [images[0].key]
    assert "meanAveragePrecision50" in result.holdout_performance()
