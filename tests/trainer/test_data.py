from __future__ import annotations

from pathlib import Path

import pytest
from trainer.classification.data import LabelledImage, fingerprint, holdout_split, validate_examples


def _examples(counts: list[int]) -> list[LabelledImage]:
    return [LabelledImage(Path(f"/x/{c}_{i}.jpg"), [c]) for c, n in enumerate(counts) for i in range(n)]


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
        LabelledImage(Path(f"/x/{i}.png"), labels)
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
    examples = [LabelledImage(Path("/data/a.jpg"), [0]), LabelledImage(Path("/data/bad.jpg"), labels)]
    with pytest.raises(ValueError, match=message) as info:
        validate_examples(examples, 3, multilabel=multilabel)
    assert "training image #1 (/data/bad.jpg)" in str(info.value)


def test_fingerprint_follows_content_not_paths(tmp_path: Path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"one")
    b.write_bytes(b"one")
    assert fingerprint([LabelledImage(a, [0])], ["x"]) == fingerprint([LabelledImage(b, [0])], ["x"])
    assert fingerprint([LabelledImage(a, [0])], ["x"]) != fingerprint([LabelledImage(a, [0])], ["y"])
    b.write_bytes(b"two")
    assert fingerprint([LabelledImage(a, [0])], ["x"]) != fingerprint([LabelledImage(b, [0])], ["x"])
