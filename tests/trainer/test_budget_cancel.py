from __future__ import annotations

import time

import pytest
from trainer.budget import service_minimum_seconds, suggested_seconds
from trainer.classification import train_classifier
from trainer.context import LocalContext, MemoryCheckpointStore
from trainer.errors import Cancelled, ImagesRejected, NotEnoughBudget

from tests.trainer.conftest import FAST, SHAPES


def test_service_minimum_is_the_documented_formula():
    assert service_minimum_seconds(3000) == pytest.approx(0.0003334 * 3000 * 3600)
    assert suggested_seconds(10.0) == 3600.0  # whole hours, at least one
    assert suggested_seconds(3601.0) == 3 * 3600.0


def test_not_enough_budget_before_any_work(shapes):
    store = MemoryCheckpointStore()
    ctx = LocalContext.with_budget(5.0, checkpoints=store)
    with pytest.raises(NotEnoughBudget) as info:
        train_classifier(shapes, SHAPES, multilabel=False, context=ctx, options=FAST)
    error = info.value
    # 12 images x 0.0003334 h = 14.4 s: the service's minimum is the larger one here
    assert error.minimum_seconds >= 14.4 and error.suggested_seconds == 3600.0
    message = str(error)
    assert "12 training images" in message
    assert (
        f"minimum is {error.minimum_seconds / 3600:.4g} h ({int(-(-error.minimum_seconds // 1))} s)"
        in message
    )
    assert "suggested budget: 1 h (3600 s)" in message
    assert store.saves == 0  # nothing was started


def test_cancelled_before_start(shapes):
    ctx = LocalContext.with_budget(300)
    ctx.stop_event.set()
    with pytest.raises(Cancelled):
        train_classifier(shapes, SHAPES, multilabel=False, context=ctx, options=FAST)


class StopAfter(LocalContext):
    """should_stop() turns true on its n-th call (extraction asks once per batch, fine-tuning
    once per step)."""

    def __init__(self, calls: int, **kwargs) -> None:
        super().__init__(deadline=time.monotonic() + 300, **kwargs)
        self.calls = 0
        self.limit = calls

    def should_stop(self) -> bool:
        self.calls += 1
        return self.calls >= self.limit


def test_cancelled_when_should_stop_turns_true_during_training(shapes):
    ctx = StopAfter(6)
    with pytest.raises(Cancelled, match="fine-tuning"):
        train_classifier(shapes, SHAPES, multilabel=False, context=ctx, options=FAST)
    assert any(event[1] == "extracting features" for event in ctx.events)


def test_cancelled_during_feature_extraction(shapes):
    ctx = StopAfter(2)
    with pytest.raises(Cancelled, match="feature extraction"):
        train_classifier(shapes, SHAPES, multilabel=False, context=ctx, options=FAST)


def test_unreadable_images_are_all_named(shapes):
    shapes[1].path.write_bytes(b"not an image")
    shapes[5].path.write_bytes(shapes[5].path.read_bytes()[:200])  # truncated
    with pytest.raises(ImagesRejected) as info:
        train_classifier(shapes, SHAPES, multilabel=False, context=LocalContext.with_budget(300), options=FAST)
    names = [name for name, _ in info.value.problems]
    assert names == [str(shapes[1].path), str(shapes[5].path)]
    assert shapes[1].path.name in str(info.value)
