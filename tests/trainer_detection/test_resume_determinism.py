"""Same seed, same model; a resumed run does less work and lands where an uninterrupted one does."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from trainer.context import LocalContext, MemoryCheckpointStore
from trainer.detection import train_detector
from trainer.detection.train import CHECKPOINT_NAME, ESTIMATE_CHECKPOINT_PREFIX
from trainer.errors import Cancelled

from tests.trainer_detection.conftest import FAST, LABELS

# a smaller input and fewer iterations than FAST: these tests compare runs, not quality
SHORT = replace(FAST, input_side=(96, 96), min_iterations=8, max_iterations=8, warmup_iterations=4)


def _same_weights(a, b) -> bool:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class StopAfter(LocalContext):
    """Asks to stop at the n-th should_stop() call (one per iteration)."""

    def __init__(self, calls: int, **kwargs) -> None:
        import time

        super().__init__(deadline=time.monotonic() + 3600, **kwargs)
        self.calls_left = calls

    def should_stop(self) -> bool:
        self.calls_left -= 1
        return self.calls_left < 0


def test_same_seed_same_model_and_other_seed_other_model(dataset):
    runs = [train_detector(dataset, LABELS, context=LocalContext.with_budget(3600, seed=s), options=SHORT)
            for s in (4, 4, 5)]
    assert _same_weights(runs[0], runs[1])
    assert runs[0].losses == runs[1].losses
    assert not _same_weights(runs[0], runs[2])


def test_resume_continues_from_the_checkpoint_and_does_less_work(dataset):
    # a given hold-out: the run is one pass (no estimate pass before it), so the counts are its own
    train, held = dataset[:-2], dataset[-2:]

    def run(context):
        return train_detector(train, LABELS, context=context, options=SHORT, holdout=held)

    fresh = run(LocalContext.with_budget(3600, seed=2))
    assert fresh.iterations_this_run == 8

    store = MemoryCheckpointStore()
    with pytest.raises(Cancelled):
        run(StopAfter(5, seed=2, checkpoints=store))
    assert CHECKPOINT_NAME in store.items

    resumed = run(LocalContext.with_budget(3600, seed=2, checkpoints=store))
    assert resumed.iterations == 8 and resumed.iterations_this_run == 3  # 5 were done before the stop
    assert _same_weights(resumed, fresh)  # exactly where an uninterrupted run lands
    assert resumed.losses == pytest.approx(fresh.losses)

    again = run(LocalContext.with_budget(3600, seed=2, checkpoints=store))
    assert again.iterations_this_run == 0 and _same_weights(again, fresh)


def test_a_stop_during_the_estimate_pass_keeps_that_pass_checkpoint(dataset):
    """Without a hold-out the estimate pass runs first; its checkpoint has its own name, and the
    resumed run ends on the model an uninterrupted one trains."""
    fresh = train_detector(dataset, LABELS, context=LocalContext.with_budget(3600, seed=2), options=SHORT)
    store = MemoryCheckpointStore()
    with pytest.raises(Cancelled):
        train_detector(dataset, LABELS, context=StopAfter(3, seed=2, checkpoints=store), options=SHORT)
    assert ESTIMATE_CHECKPOINT_PREFIX + CHECKPOINT_NAME in store.items and CHECKPOINT_NAME not in store.items
    resumed = train_detector(dataset, LABELS, context=LocalContext.with_budget(3600, seed=2, checkpoints=store),
                             options=SHORT)
    assert _same_weights(resumed, fresh)
    assert resumed.holdout_metrics == fresh.holdout_metrics


def test_checkpoints_of_other_data_seed_or_options_are_ignored(dataset):
    tiny = replace(SHORT, min_iterations=2, max_iterations=2)
    store = MemoryCheckpointStore()

    def run(images=dataset, seed=2, options=tiny):
        return train_detector(images, LABELS, context=LocalContext.with_budget(3600, seed=seed, checkpoints=store),
                              options=options)

    run()
    assert run().iterations_this_run == 0  # the same run: already done
    assert run(seed=3).iterations_this_run == 2
    assert run(images=dataset[:-2], seed=3).iterations_this_run == 2
    assert run(images=dataset[:-2], seed=3, options=replace(tiny, learning_rate=5e-4)).iterations_this_run == 2
    assert run(images=dataset[:-2], seed=3, options=replace(tiny, learning_rate=5e-4, threads=2)
               ).iterations_this_run == 0  # threads change nothing a checkpoint holds
    store.items[CHECKPOINT_NAME] = b"torn write"
    assert run().iterations_this_run == 2
