from __future__ import annotations

import pytest
from trainer.classification.train import THREADS_ENV, _cpu_threads
from trainer.context import DirectoryCheckpointStore, LocalContext, MemoryCheckpointStore, TrainingContext


def test_directory_store_round_trips_and_refuses_odd_names(tmp_path):
    store = DirectoryCheckpointStore(tmp_path / "ckpt")
    assert store.load("classifier-state.pt") is None
    store.save("classifier-state.pt", b"abc")
    store.save("classifier-state.pt", b"abcd")
    assert store.load("classifier-state.pt") == b"abcd"
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "classifier-state.pt"
    ]  # no partial files
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="invalid checkpoint name"):
            store.save(bad, b"x")


def test_local_context_is_a_training_context():
    ctx = LocalContext.with_budget(10)
    assert isinstance(ctx, TrainingContext) and isinstance(ctx.checkpoints, MemoryCheckpointStore)
    ctx.progress("training", 50.0, "half way", 3.0)
    assert ctx.events[-1][1:] == ("training", 50.0, "half way")


def test_thread_count_from_option_then_environment(monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "3")
    assert _cpu_threads(None) == 3
    assert _cpu_threads(1) == 1
    monkeypatch.delenv(THREADS_ENV)
    assert _cpu_threads(None) >= 1
