from __future__ import annotations

from pathlib import Path

import pytest
from trainer.classification.data import fingerprint, validate_examples
from trainer.split import holdout_split

from loupe.runner.examples import Example


def _examples(counts: list[int]) -> list[Example]:
    return [Example(Path(f"/x/{c}_{i}.jpg"), labels=[c]) for c, n in enumerate(counts) for i in range(n)]


def test_split_is_stratified_and_keeps_a_training_image_per_class():
    examples = _examples([2, 5, 10, 1])
    train, held = holdout_split(examples, 4, seed=3)
    assert sorted(train + held) == list(range(len(examples)))
    per_class = {c: sum(1 for i in held if examples[i].labels == [c]) for c in range(4)}
    assert per_class == {0: 1, 1: 1, 2: 2, 3: 0}  # ~20%, at least one, never the last one
    for c in range(4):
        assert any(examples[i].labels == [c] for i in train)


def test_split_is_deterministic_in_the_seed():
    examples = _examples([6, 6, 6])
    assert holdout_split(examples, 3, seed=1) == holdout_split(examples, 3, seed=1)
    assert any(
        holdout_split(examples, 3, seed=1)[1] != holdout_split(examples, 3, seed=s)[1] for s in range(2, 6)
    )


def test_multilabel_split_never_takes_a_labels_last_training_image():
    examples = [
        Example(Path(f"/x/{i}.png"), labels=labels)
        for i, labels in enumerate([[0, 1], [0], [1], [0, 2], [2], [], [], [0, 1, 2]])
    ]
    for seed in range(20):
        train, held = holdout_split(examples, 3, seed=seed)
        for label in range(3):
            assert any(label in examples[i].labels for i in train)
        assert held, "some images must be held out"


@pytest.mark.parametrize(
    "labels, multilabel, message",
    [
        ([0, 1], False, "exactly one label"),
        ([3], False, "not a category index"),
        ([1, 1], True, "repeated labels"),
    ],
)
def test_bad_labels_name_the_image(labels, multilabel, message):
    examples = [Example(Path("/data/a.jpg"), labels=[0]), Example(Path("/data/bad.jpg"), labels=labels)]
    with pytest.raises(ValueError, match=message) as info:
        validate_examples(examples, 3, multilabel=multilabel)
    assert "training image #1 (/data/bad.jpg)" in str(info.value)


def test_fingerprint_follows_content_not_paths(tmp_path: Path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"one")
    b.write_bytes(b"one")
    assert fingerprint([Example(a, labels=[0])], ["x"]) == fingerprint([Example(b, labels=[0])], ["x"])
    assert fingerprint([Example(a, labels=[0])], ["x"]) != fingerprint([Example(a, labels=[0])], ["y"])
    b.write_bytes(b"two")
    assert fingerprint([Example(a, labels=[0])], ["x"]) != fingerprint([Example(b, labels=[0])], ["x"])
