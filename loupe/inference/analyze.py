"""From request bytes (or an image URL) to the full analyze response (docs/wire-contract.md#analyze)."""

from __future__ import annotations

import socket
from typing import Any

from PIL import Image

from loupe.imaging import PREDICTION_LIMITS, ImageInfo, ImageRejected
from loupe.inference.errors import from_fetch_error, from_image_rejected
from loupe.inference.predictor import Predictor
from loupe.net.safe_fetch import Resolver, UrlFetchError, fetch_url
from loupe.preprocess import decode_for_model

URL_FETCH_TIMEOUT_S = 10.0


def decode_for(predictor: Predictor, image_bytes: bytes) -> tuple[Image.Image, ImageInfo]:
    """Safe decode under the prediction limits (6 MB, 50..16000 px), EXIF orientation applied;
    JPEGs decode at the smallest DCT scale that still covers the network input."""
    try:
        return decode_for_model(image_bytes, PREDICTION_LIMITS, predictor.preprocessing)
    except ImageRejected as exc:
        raise from_image_rejected(exc) from None


def analyze_result(predictor: Predictor, image_bytes: bytes) -> dict[str, Any]:
    """``{"modelVersion", "metadata": {"width", "height"}, "customModelResult"}``.

    Width and height are the original image's after EXIF orientation, and boxes are in those
    pixels. Raises InvalidRequest for unusable images, ModelUnusable for broken models.
    """
    image, info = decode_for(predictor, image_bytes)
    result = predictor.predict(image, original_size=(info.width, info.height))
    return {
        "modelVersion": predictor.model_version,
        "metadata": {"width": info.width, "height": info.height},
        "customModelResult": result,
    }


def fetch_image(
    url: str,
    *,
    allow_http: bool = False,
    allow_loopback: bool = False,
    timeout_s: float = URL_FETCH_TIMEOUT_S,
    resolver: Resolver = socket.getaddrinfo,
) -> bytes:
    """The bytes behind analyze's ``{"url": ...}``, fetched safely (loupe.net.safe_fetch) under
    the prediction size limit; failures are InvalidRequest with the fetch code as inner code."""
    try:
        return fetch_url(
            url,
            max_bytes=PREDICTION_LIMITS.max_bytes,
            timeout_s=timeout_s,
            allow_http=allow_http,
            allow_loopback=allow_loopback,
            resolver=resolver,
        )
    except UrlFetchError as exc:
        raise from_fetch_error(exc) from None
