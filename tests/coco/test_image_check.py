"""check_images: depth (full / sample / none), bounded concurrency, fetch failures, EXIF sizes."""

from __future__ import annotations

import io
import json
import threading
import time

from PIL import Image

from loupe.coco import (
    IMAGE_ACCESS_DENIED,
    IMAGE_FETCH_FAILED,
    IMAGE_NOT_FOUND,
    ImageEntry,
    ImageFetchError,
    Purpose,
    check_images,
    image_limits_for,
    validate_coco,
)
from tests.coco.corpus import classification_doc, png

LIMITS = image_limits_for(Purpose.TRAINING)


def report_of(per_category: int):
    doc = classification_doc(per_category)
    return validate_coco(json.dumps(doc).encode(), purpose=Purpose.TRAINING)


def serve(data: bytes = b""):
    image = data or png()

    def fetch(entry: ImageEntry) -> bytes:
        return image

    return fetch


def test_full_check_below_the_limit():
    report = report_of(5)
    result = check_images(report, serve(), limits=LIMITS, full_limit=10, sample_size=3, concurrency=2)
    assert (result.depth, result.checked, result.total, result.error_count) == ("full", 10, 10, 0)
    assert result.ok


def test_seeded_sample_above_the_limit():
    report = report_of(25)  # 50 images
    seen: list[int] = []
    lock = threading.Lock()

    def fetch(entry: ImageEntry) -> bytes:
        with lock:
            seen.append(entry.index)
        raise ImageFetchError(IMAGE_NOT_FOUND, "gone")

    first = check_images(report, fetch, limits=LIMITS, full_limit=10, sample_size=7, concurrency=3, seed=1)
    assert (first.depth, first.checked, first.total, first.error_count) == ("sample", 7, 50, 7)
    sample = sorted(seen)
    assert [i.target for i in first.errors] == [f"images[{k}]" for k in sample]  # listed in file order
    seen.clear()
    check_images(report, fetch, limits=LIMITS, full_limit=10, sample_size=7, concurrency=3, seed=1)
    assert sorted(seen) == sample  # same seed, same sample
    seen.clear()
    check_images(report, fetch, limits=LIMITS, full_limit=10, sample_size=7, concurrency=3, seed=2)
    assert sorted(seen) != sample


def test_nothing_to_check():
    report = validate_coco(b"[]", purpose=Purpose.TRAINING)
    result = check_images(report, serve(), limits=LIMITS, full_limit=10, sample_size=3, concurrency=2)
    assert (result.depth, result.checked, result.total) == ("none", 0, 0)


def test_concurrency_is_bounded():
    report = report_of(10)  # 20 images
    active = peak = 0
    lock = threading.Lock()
    image = png()

    def fetch(entry: ImageEntry) -> bytes:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.02)
        with lock:
            active -= 1
        return image

    result = check_images(report, fetch, limits=LIMITS, full_limit=100, sample_size=3, concurrency=4)
    assert result.ok and result.checked == 20
    assert 1 < peak <= 4


def test_fetch_failures_become_issues():
    report = report_of(2)

    def fetch(entry: ImageEntry) -> bytes:
        if entry.index == 0:
            raise ImageFetchError(IMAGE_ACCESS_DENIED, "403 from storage")
        if entry.index == 1:
            raise ConnectionResetError("peer reset")
        if entry.index == 2:
            raise ImageFetchError(IMAGE_NOT_FOUND, "404")
        return png()

    result = check_images(report, fetch, limits=LIMITS, full_limit=10, sample_size=3, concurrency=2)
    assert [(i.code, i.target) for i in result.errors] == [
        (IMAGE_ACCESS_DENIED, "images[0]"),
        (IMAGE_FETCH_FAILED, "images[1]"),
        (IMAGE_NOT_FOUND, "images[2]"),
    ]
    assert result.errors[0].message == "images[0] (file_name 'images/1.png'): 403 from storage"
    assert "ConnectionResetError" in result.errors[1].message


def test_many_failures_are_capped():
    report = report_of(20)  # 40 images

    def fetch(entry: ImageEntry) -> bytes:
        raise ImageFetchError(IMAGE_NOT_FOUND, "gone")

    result = check_images(report, fetch, limits=LIMITS, full_limit=100, sample_size=3, concurrency=4)
    assert result.error_count == 40
    assert len(result.errors) == 11 and result.errors[-1].message == "... and 30 more ImageNotFound errors"


def exif_rotated_jpeg(width: int, height: int) -> bytes:
    image = Image.new("RGB", (width, height), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    buf = io.BytesIO()
    image.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def test_exif_rotated_sizes_match_either_way_round():
    doc = classification_doc()
    doc["images"][0].update(width=64, height=32)  # as stored
    doc["images"][1].update(width=32, height=64)  # as displayed
    doc["images"][2].update(width=50, height=32)  # wrong
    report = validate_coco(json.dumps(doc).encode(), purpose=Purpose.TRAINING)
    data = exif_rotated_jpeg(64, 32)
    result = check_images(report, serve(data), limits=LIMITS, full_limit=10, sample_size=3, concurrency=2)
    assert [(w.code, w.target) for w in result.warnings] == [
        ("ImageSizeMismatch", "images[2]"),
        ("ImageSizeMismatch", "images[3]"),
    ]
    assert "declares 50x32 pixels, the image is 32x64" in result.warnings[0].message
    assert result.ok


def test_limits_follow_the_purpose():
    train, evaluation = image_limits_for(Purpose.TRAINING), image_limits_for(Purpose.EVALUATION)
    assert (train.min_dim, train.max_dim, train.max_bytes) == (10, 10240, 20 * 1024 * 1024)
    assert (evaluation.min_dim, evaluation.max_dim) == (10, 16000)
