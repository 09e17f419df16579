"""The budget, cancellation, divergence and bad input."""
from __future__ import annotations

import itertools
import time
from dataclasses import replace

import pytest
from trainer.budget import DETECTOR_HOURS_PER_IMAGE
from trainer.context import LocalContext, MemoryCheckpointStore
from trainer.detection import train_detector
from trainer.detection.train import CHECKPOINT_NAME, ESTIMATE_CHECKPOINT_PREFIX
from trainer.errors import Cancelled, Diverged, ImagesRejected, NotEnoughBudget
from trainer.starting_points import UnknownDetector

from loupe.runner.examples import Example
from tests.trainer_detection.conftest import FAST, LABELS


def test_a_budget_below_the_minimum_is_refused_before_training(dataset):
    ctx = LocalContext.with_budget(60)
    with pytest.raises(NotEnoughBudget) as caught:
        train_detector(dataset, LABELS, context=ctx, options=FAST)
    error = caught.value
    assert error.images == len(dataset)
    assert DETECTOR_HOURS_PER_IMAGE == 0.0066667  # docs/wire-contract.md
    assert error.minimum_seconds == pytest.approx(0.0066667 * 3600 * len(dataset))
    assert error.suggested_seconds == 3600 and error.available_seconds <= 60
    assert "minimum is 0.06 h" in str(error) and "suggested budget: 1 h" in str(error)
    assert ctx.events == []  # nothing was started


def test_the_deadline_ends_training_early_with_a_usable_model(dataset):
    ctx = LocalContext.with_budget(3600)

    def shorten(phase, percent, message, eta):
        # some iterations in (after the measured budget check), the budget turns out to be nearly spent
        done = int(message.split()[1].split("/")[0]) if message.startswith("iteration") else 0
        if done >= 5 and ctx.deadline > time.monotonic() + 100:
            ctx.deadline = time.monotonic() + 3.0

    ctx.on_progress = shorten
    endless = replace(FAST, min_iterations=10, epochs=10 ** 6, max_iterations=10 ** 6)
    result = train_detector(dataset, LABELS, context=ctx, options=endless)
    assert result.stop_reason == "deadline" and 0 < result.iterations < 10 ** 6
    assert time.monotonic() <= ctx.deadline + 1.5  # one iteration of slack at most
    training = [e for e in ctx.events if e[1] == "training"]
    assert max(b[0] - a[0] for a, b in itertools.pairwise(training)) < 3.0  # progress every few seconds


def test_cancel_stops_at_once_and_saves_a_checkpoint(dataset):
    store = MemoryCheckpointStore()
    ctx = LocalContext.with_budget(3600, checkpoints=store)
    ctx.stop_event.set()
    with pytest.raises(Cancelled):
        train_detector(dataset, LABELS, context=ctx, options=FAST)
    # few-shot data: the first pass is the estimate's (a model trained without some images)
    assert ESTIMATE_CHECKPOINT_PREFIX + CHECKPOINT_NAME in store.items


def test_a_loss_that_blows_up_ends_as_diverged(dataset):
    with pytest.raises(Diverged, match="lower learning rate"):
        train_detector(dataset, LABELS, context=LocalContext.with_budget(3600),
                       options=replace(FAST, learning_rate=1e12, warmup_iterations=1))


@pytest.mark.parametrize("box, message", [
    ((2, 0.1, 0.1, 0.2, 0.2), r"boxes\[0\] category 2 is not an index in \[0, 1\]"),
    ((0, 0.9, 0.1, 0.2, 0.2), r"boxes\[0\] = \[0.9, 0.1, 0.2, 0.2\] is not a relative"),
    ((0, 0.1, 0.1, 0.0, 0.2), r"boxes\[0\] = \[0.1, 0.1, 0.0, 0.2\] is not a relative \[left, top, width, height\] box"),
])
def test_bad_boxes_are_named(dataset, box, message):
    bad = Example(dataset[0].path, "images[7] (file_name 'x.jpg')", 160, 128, [0], [box])
    with pytest.raises(ValueError, match=r"training image #1 \(images\[7\] \(file_name 'x.jpg'\)\): " + message):
        train_detector([dataset[0], bad], LABELS, context=LocalContext.with_budget(3600), options=FAST)


def test_other_bad_input(dataset, tmp_path):
    ctx = LocalContext.with_budget(3600)
    with pytest.raises(ValueError, match="no image has a box"):
        train_detector([d for d in dataset if not d.boxes], LABELS, context=ctx, options=FAST)
    with pytest.raises(ValueError, match="labels: expected at least one non-empty category name"):
        train_detector(dataset, [], context=ctx, options=FAST)
    with pytest.raises(UnknownDetector, match="unknown detector starting point 'nope'; known: .*efficientnet_lite0"):
        train_detector(dataset, LABELS, context=ctx, starting_point="nope", options=FAST)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    images = [*dataset, Example(broken, "images[9] (file_name 'broken.jpg')", 160, 128, [0],
                                   [(0, 0.1, 0.1, 0.3, 0.3)])]
    with pytest.raises(ImagesRejected, match="broken.jpg"):
        train_detector(images, LABELS, context=LocalContext.with_budget(3600), options=FAST)
