from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from trainer.classification import train_classifier
from trainer.context import LocalContext, MemoryCheckpointStore
from trainer.errors import Cancelled, Diverged

from tests.trainer.conftest import FAST, SHAPES
from tests.trainer.test_budget_cancel import StopAfter


def _outputs(result) -> np.ndarray:
    with torch.no_grad():
        return result.model(torch.from_numpy(result.check_inputs)).numpy()


def test_same_seed_same_model_and_other_seed_other_model(shapes):
    # a head fitted on augmented views: the seed draws them (the plain probe does not depend on it)
    options = replace(FAST, head="power-views")
    runs = [
        train_classifier(
            shapes, SHAPES, multilabel=False, context=LocalContext.with_budget(300, seed=s), options=options
        )
        for s in (4, 4, 5)
    ]
    assert np.array_equal(_outputs(runs[0]), _outputs(runs[1]))
    assert [p.name for p in runs[0].holdout.images] == [p.name for p in runs[1].holdout.images]
    assert not np.allclose(_outputs(runs[0]), _outputs(runs[2]), atol=1e-4)


def test_resume_continues_from_the_checkpoint_and_does_less_work(shapes):
    options = replace(FAST, epochs=4)
    fresh = train_classifier(
        shapes, SHAPES, multilabel=False, context=LocalContext.with_budget(300), options=options
    )
    assert fresh.stats.feature_extractions == 24
    # the split pass fine-tunes 4 epochs; the final pass fine-tunes too only when that beat the linear
    # head on the held-out images (a near tie on these shapes: it differs between machines)
    assert fresh.stats.finetune_epochs_run == (8 if fresh.stats.method == "finetune" else 4)

    store = MemoryCheckpointStore()
    # should_stop calls: 1 at the start, 1 per extraction batch (2 views x 1 batch), 1 per step;
    # the hold-out pass has 9 images = 1 step per epoch, so the 7th call stops it after 3 of 4 epochs
    with pytest.raises(Cancelled):
        train_classifier(
            shapes, SHAPES, multilabel=False, context=StopAfter(7, checkpoints=store), options=options
        )
    assert store.saves >= 3  # plan, two feature views, fine-tuning state

    resumed = train_classifier(
        shapes,
        SHAPES,
        multilabel=False,
        context=LocalContext.with_budget(300, checkpoints=store),
        options=options,
    )
    assert resumed.stats.feature_extractions == 0 and resumed.stats.views_restored == 2
    assert resumed.stats.finetune_epochs_run < fresh.stats.finetune_epochs_run
    assert resumed.stats.passes_restored  # picked up inside the interrupted pass
    # and it lands exactly where an uninterrupted run does
    assert np.allclose(_outputs(resumed), _outputs(fresh), atol=1e-5)
    assert np.allclose(resumed.holdout.scores, fresh.holdout.scores, atol=1e-5)

    again = train_classifier(
        shapes,
        SHAPES,
        multilabel=False,
        context=LocalContext.with_budget(300, checkpoints=store),
        options=options,
    )
    assert again.stats.finetune_epochs_run == 0 and again.stats.passes_restored == ["split", "final"]


def test_checkpoints_of_other_data_are_ignored(shapes):
    store = MemoryCheckpointStore()
    train_classifier(
        shapes, SHAPES, multilabel=False, context=LocalContext.with_budget(300, checkpoints=store), options=FAST
    )
    other = train_classifier(
        shapes,
        ["a", "b", "c"],
        multilabel=False,
        context=LocalContext.with_budget(300, checkpoints=store),
        options=FAST,
    )
    assert other.stats.feature_extractions == 24 and not other.stats.passes_restored


def test_a_nan_loss_is_recovered_once_with_a_lower_learning_rate(shapes):
    seen = []

    def nan_once(loss, epoch, step):
        seen.append((epoch, step))
        return loss * float("nan") if len(seen) == 2 else loss

    result = train_classifier(
        shapes,
        SHAPES,
        multilabel=False,
        context=LocalContext.with_budget(300),
        options=replace(FAST, loss_hook=nan_once),
    )
    assert result.stats.recoveries == 1
    assert np.isfinite(_outputs(result)).all()


def test_a_loss_that_stays_nan_ends_as_diverged(shapes):
    def always_nan(loss, epoch, step):
        return loss * float("nan")

    with pytest.raises(Diverged, match="non-finite after 2 restarts"):
        train_classifier(
            shapes,
            SHAPES,
            multilabel=False,
            context=LocalContext.with_budget(300),
            options=replace(FAST, loss_hook=always_nan),
        )
