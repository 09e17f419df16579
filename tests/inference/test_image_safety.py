"""Every unsafe or unusable image is refused as InvalidRequest with its inner code (A.9), and
the formats of the retired service are accepted."""

from __future__ import annotations

import pytest
from PIL import Image

from loupe.inference import InvalidRequest, analyze_result, load_predictor
from tests.inference.builders import DictModelFiles
from tests.inference.images import encode, noise_image, png_header_only

SIX_MB = 6 * 1024 * 1024


@pytest.fixture(scope="module")
def predictor(request):
    store = DictModelFiles()
    store.put("m", request.getfixturevalue("multiclass")[0])
    return load_predictor(store, "m")


def _refusal(predictor, data: bytes) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        analyze_result(predictor, data)
    assert info.value.status == 400 and info.value.code == "InvalidRequest"
    return info.value


def _truncated_jpeg() -> bytes:
    data = encode(noise_image(300, 200, 1), "JPEG")
    return data[: len(data) // 2]


CASES = {
    "empty": (lambda: b"", "InvalidImageSize", "0 bytes"),
    "over 6 MB": (lambda: b"\xff\xd8\xff" + b"\x00" * SIX_MB, "InvalidImageSize", "the limit is 6.0 MB"),
    "too narrow": (lambda: encode(noise_image(49, 200, 1), "PNG"), "InvalidImageDimension", "width is 49 px"),
    "too short": (
        lambda: encode(noise_image(200, 30, 1), "JPEG"),
        "InvalidImageDimension",
        "height is 30 px",
    ),
    "too wide": (
        lambda: encode(Image.new("RGB", (16001, 60)), "PNG"),
        "InvalidImageDimension",
        "width is 16001 px",
    ),
    "bomb header over Pillow's hard limit": (
        lambda: png_header_only(20000, 20000),
        "InvalidImageDimension",
        "decompression bomb",
    ),
    "bomb header under Pillow's limit (our pixels-per-byte rule)": (
        lambda: png_header_only(8000, 8000),
        "InvalidImageDimension",
        "decompression bomb",
    ),
    "truncated": (_truncated_jpeg, "InvalidImageFormat", "corrupt or truncated"),
    "not an image": (lambda: b"%PDF-1.7\n" + b"x" * 500, "InvalidImageFormat", "not a readable image"),
    "unsupported format": (lambda: encode(noise_image(100, 100, 1), "TGA"), "InvalidImageFormat", "TGA"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_unsafe_input_refused_with_its_code(predictor, case):
    make, inner, words = CASES[case]
    error = _refusal(predictor, make())
    assert error.inner_code == inner
    assert words in error.message


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [("JPEG", "RGB"), ("PNG", "RGBA"), ("PNG", "L"), ("GIF", "P"), ("BMP", "RGB"), ("WEBP", "RGB")],
)
def test_supported_formats_and_modes(predictor, fmt, mode):
    data = encode(noise_image(120, 80, 4).convert(mode), fmt)
    response = analyze_result(predictor, data)
    assert response["metadata"] == {"width": 120, "height": 80}
    assert len(response["customModelResult"]["tagsResult"]["values"]) == 4


def test_limits_are_inclusive(predictor):
    for size in ((50, 50), (16000, 50)):
        response = analyze_result(predictor, encode(Image.new("RGB", size), "PNG"))
        assert response["metadata"] == {"width": size[0], "height": size[1]}
