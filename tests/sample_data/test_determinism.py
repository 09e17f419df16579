"""Same seed, same bytes; different seeds and splits, different images."""
from __future__ import annotations

import hashlib

from loupe.sample_data import all_samples, classification, detection, multilabel


def _digests(ds) -> set[str]:
    return {hashlib.sha256(data).hexdigest() for data in ds.images.values()}


def test_same_seed_gives_identical_files():
    for make in (lambda: classification("train", seed=7, per_class=2),
                 lambda: multilabel("test", seed=7, count=5),
                 lambda: detection("train", seed=7, count=4)):
        assert make().files() == make().files()


def test_other_seed_gives_other_images():
    a, b = detection("test", seed=1, count=4), detection("test", seed=2, count=4)
    assert not _digests(a) & _digests(b)
    assert a.coco["annotations"] != b.coco["annotations"]


def test_no_image_is_shared_between_any_two_datasets():
    seen: dict[str, str] = {}
    for ds in all_samples(seed=0):
        for digest in _digests(ds):
            assert digest not in seen, f"{ds.name} repeats an image of {seen.get(digest)}"
            seen[digest] = ds.name
        assert len(_digests(ds)) == len(ds.images), f"{ds.name} repeats an image"
