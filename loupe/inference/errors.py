"""Prediction errors with the stable codes of the retired service (docs/wire-contract.md#analyze-errors).

Each carries what the HTTP layer needs for the error envelope: ``status``, ``code`` and, for
400s, an ``inner_code`` for ``innererror.code``. ``loupe.api.errors.ApiError(e.status, e.code,
e.message, inner_code=e.inner_code)`` is the whole mapping.
"""

from __future__ import annotations

from loupe.errors import shown
from loupe.imaging import ImageRejected
from loupe.net.safe_fetch import TOO_LARGE, UrlFetchError

# inner error codes of InvalidRequest
INVALID_IMAGE_FORMAT = "InvalidImageFormat"
INVALID_IMAGE_SIZE = "InvalidImageSize"
INVALID_IMAGE_DIMENSION = "InvalidImageDimension"
BAD_ARGUMENT = "BadArgument"


class InferenceError(Exception):
    status: int = 500
    code: str = "InternalServerError"

    def __init__(self, message: str, *, inner_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.inner_code = inner_code


class InvalidRequest(InferenceError):
    """400: the request or its image is unusable. ``inner_code`` says why."""

    status = 400
    code = "InvalidRequest"

    def __init__(self, inner_code: str, message: str) -> None:
        super().__init__(message, inner_code=inner_code)


class ModelNotFound(InferenceError):
    """404: no trained model of that name (NotFound "Resource not found", docs/wire-contract.md#analyze-errors)."""

    status = 404
    code = "NotFound"

    def __init__(self, model_name: str) -> None:
        super().__init__(f"Resource not found. There is no trained model named '{shown(model_name)}'.")
        self.model_name = model_name


class ModelUnusable(InferenceError):
    """500: the model's artifacts exist but cannot be served (corrupt or inconsistent files).

    The message names the model and the file; it is a server-side fault, not the caller's.
    """


# imaging.ImageRejected codes -> inner codes. A decompression bomb is an image whose declared
# dimensions are out of proportion, so it is reported as a dimension problem.
_IMAGE_CODES = {
    "InvalidImageSize": INVALID_IMAGE_SIZE,
    "InvalidImageFormat": INVALID_IMAGE_FORMAT,
    "InvalidImageDimension": INVALID_IMAGE_DIMENSION,
    "DecompressionBomb": INVALID_IMAGE_DIMENSION,
}


def from_image_rejected(exc: ImageRejected) -> InvalidRequest:
    return InvalidRequest(_IMAGE_CODES.get(exc.code, INVALID_IMAGE_FORMAT), f"Invalid image: {exc.message}.")


def from_fetch_error(exc: UrlFetchError) -> InvalidRequest:
    """Fetch codes (InvalidImageUrl, ImageUrlNotAllowed, ...) become inner codes as they are, except
    that a body over the limit reads InvalidImageSize, as the same image sent as bytes would."""
    inner = INVALID_IMAGE_SIZE if exc.code == TOO_LARGE else exc.code
    return InvalidRequest(inner, f"Cannot use the image URL: {exc.message}.")
