"""Detectors: boxes in original pixels through letterbox/stretch, EXIF orientation and JPEG draft
decoding; thresholding, sorting, clipping, and the exact A.8 object shape."""

from __future__ import annotations

import pytest

from loupe.inference import analyze_result, decode_for, load_predictor
from tests.inference.builders import DETECTOR_LABELS, FIXED_BOX, DictModelFiles, detector_artifacts
from tests.inference.images import encode, jpeg_with_orientation, white_box_on_black

# network input is 128 x 96 (width x height)
INPUT_W, INPUT_H = 128, 96
BRIGHT = (200, 60, 360, 180)  # white rectangle in a 640 x 240 displayed image


def _load(files):
    store = DictModelFiles()
    store.put("det", files)
    return load_predictor(store, "det")


def _xyxy(obj) -> tuple[int, int, int, int]:
    b = obj["boundingBox"]
    return b["x"], b["y"], b["x"] + b["w"], b["y"] + b["h"]


def _scaled(box, sx, sy) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box
    return round(x1 / sx), round(y1 / sy), round(x2 / sx), round(y2 / sy)


def _assert_shape(response, width, height):
    assert set(response) == {"modelVersion", "metadata", "customModelResult"}
    assert response["metadata"] == {"width": width, "height": height}
    assert set(response["customModelResult"]) == {"objectsResult"}
    values = response["customModelResult"]["objectsResult"]["values"]
    for obj in values:
        assert set(obj) == {"boundingBox", "tags"}
        box = obj["boundingBox"]
        assert set(box) == {"x", "y", "w", "h"} and all(type(v) is int for v in box.values())
        assert box["x"] >= 0 and box["y"] >= 0 and box["w"] >= 1 and box["h"] >= 1
        assert box["x"] + box["w"] <= width and box["y"] + box["h"] <= height
        assert len(obj["tags"]) == 1 and set(obj["tags"][0]) == {"name", "confidence"}
        assert obj["tags"][0]["name"] in DETECTOR_LABELS
    confidences = [obj["tags"][0]["confidence"] for obj in values]
    assert confidences == sorted(confidences, reverse=True)
    return values


def _assert_near(got, expected, tolerance):
    assert all(abs(g - e) <= tolerance for g, e in zip(got, expected, strict=False)), (got, expected)


@pytest.mark.parametrize(
    ("resize", "sx", "sy"),
    [
        # letterbox: one scale, min(128/640, 96/240) = 0.2, padded below
        ("letterbox", 0.2, 0.2),
        # stretch: each axis on its own
        ("stretch", INPUT_W / 640, INPUT_H / 240),
    ],
)
def test_boxes_map_back_to_original_pixels(request, resize, sx, sy):
    predictor = _load(request.getfixturevalue(f"detector_{resize}"))
    data = encode(white_box_on_black(640, 240, BRIGHT), "PNG")
    values = _assert_shape(analyze_result(predictor, data), 640, 240)

    # model order was [clip 0.3, low 0.01, bright 0.9, fixed 0.5]: sorted, low dropped
    assert [(o["tags"][0]["name"], o["tags"][0]["confidence"]) for o in values] == [
        ("bright", 0.9),
        ("fixed", 0.5),
        ("ring", 0.3),
    ]
    _assert_near(_xyxy(values[0]), BRIGHT, tolerance=1 / sx + 1)
    assert _xyxy(values[1]) == _scaled(FIXED_BOX, sx, sy)
    # the clip box reaches beyond the input (and into letterbox padding): clipped to the image
    assert _xyxy(values[2]) == (0, 0, 640, 240)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied_before_detection(detector_letterbox, orientation):
    predictor = _load(detector_letterbox)
    data = jpeg_with_orientation(white_box_on_black(640, 240, BRIGHT), orientation)
    values = _assert_shape(analyze_result(predictor, data), 640, 240)
    assert values[0]["tags"][0]["name"] == "bright"
    _assert_near(_xyxy(values[0]), BRIGHT, tolerance=1 / 0.2 + 1)


def test_large_rotated_jpeg_decodes_at_draft_scale_and_reports_original_pixels(detector_letterbox):
    predictor = _load(detector_letterbox)
    width, height = 4000, 1500  # displayed; stored as 1500 x 4000 with orientation 6
    bright = (1250, 375, 2250, 1125)
    data = jpeg_with_orientation(white_box_on_black(width, height, bright), 6, quality=90)

    image, info = decode_for(predictor, data)
    assert (info.width, info.height) == (width, height)
    assert image.width < width / 4  # decoded at 1/8 scale, not in full
    assert image.width >= max(INPUT_W, INPUT_H) and image.height >= max(INPUT_W, INPUT_H)

    values = _assert_shape(analyze_result(predictor, data), width, height)
    scale = min(INPUT_W / width, INPUT_H / height)  # 0.032
    assert values[0]["tags"][0]["name"] == "bright"
    _assert_near(_xyxy(values[0]), bright, tolerance=1 / scale + 1)
    assert _xyxy(values[1]) == _scaled(FIXED_BOX, scale, scale)
    assert _xyxy(values[2]) == (0, 0, width, height)


def test_score_threshold_from_preprocessing():
    predictor = _load(detector_artifacts("letterbox", score_threshold=0.4))
    data = encode(white_box_on_black(640, 240, BRIGHT), "PNG")
    values = _assert_shape(analyze_result(predictor, data), 640, 240)
    assert [o["tags"][0]["name"] for o in values] == ["bright", "fixed"]


def test_nothing_bright_leaves_only_the_fixed_boxes(detector_stretch):
    predictor = _load(detector_stretch)
    data = encode(white_box_on_black(300, 200, (0, 0, 0, 0)), "PNG")
    values = _assert_shape(analyze_result(predictor, data), 300, 200)
    assert [o["tags"][0]["name"] for o in values] == ["fixed", "ring"]
