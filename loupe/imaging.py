"""Safe image inspection and decoding, shared by dataset validation, the trainer and prediction.

Every image Loupe touches comes from a user. Headers are read before any pixel is decoded, so
a decompression bomb (a small file that claims a huge canvas) is refused before it can take
memory; JPEGs are decoded at a reduced scale when the caller only needs a small image.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Formats of the retired service's docs plus the ones Pillow reads safely (issue #2).
ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "GIF", "BMP", "WEBP", "ICO", "TIFF", "MPO"})
# A hard ceiling on decoded pixels, whatever the caller allows: 16000 x 16000 is the largest
# canvas the service accepts at all (prediction); bigger is refused before decoding.
ABSOLUTE_MAX_PIXELS = 16000 * 16000
# Beyond this many pixels, a canvas far bigger than its file is a decompression bomb.
BOMB_MIN_PIXELS = 25_000_000
BOMB_PIXELS_PER_BYTE = 1000

ImageFile.LOAD_TRUNCATED_IMAGES = False
# Pillow's own guard stays on as a backstop behind ours.
Image.MAX_IMAGE_PIXELS = ABSOLUTE_MAX_PIXELS // 2


class ImageRejected(ValueError):
    """An image Loupe will not use. ``code`` is stable and machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    min_dim: int
    max_dim: int


# docs/wire-contract.md#limits quotas
TRAINING_LIMITS = ImageLimits(max_bytes=20 * 1024 * 1024, min_dim=10, max_dim=10240)
# 10 px, not the checker's 50: small-image test sets (CIFAR, GTSRB) are legitimate evaluation data;
# 50 px is the prediction API's minimum (loupe.coco.quotas agrees).
EVALUATION_LIMITS = ImageLimits(max_bytes=20 * 1024 * 1024, min_dim=10, max_dim=16000)
PREDICTION_LIMITS = ImageLimits(max_bytes=6 * 1024 * 1024, min_dim=50, max_dim=16000)


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int  # after EXIF orientation
    height: int
    size_bytes: int


def _human(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB ({n} bytes)"
    return f"{n / 1024:.1f} KB" if n >= 1024 else f"{n} bytes"


def _open(data: bytes, limits: ImageLimits) -> Image.Image:
    if not data:
        raise ImageRejected("InvalidImageSize", "the image is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise ImageRejected(
            "InvalidImageSize",
            f"the image is {_human(len(data))}; the limit is {_human(limits.max_bytes)}",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("DecompressionBomb", f"refused as a decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise ImageRejected(
            "InvalidImageFormat",
            f"not a readable image; supported formats: {', '.join(sorted(ALLOWED_FORMATS))}",
        ) from None
    except Exception as exc:  # Pillow raises many types on hostile headers
        raise ImageRejected("InvalidImageFormat", f"the image header cannot be read: {exc}") from None
    if image.format not in ALLOWED_FORMATS:
        raise ImageRejected(
            "InvalidImageFormat",
            f"format {image.format} is not supported; supported: {', '.join(sorted(ALLOWED_FORMATS))}",
        )
    return image


def _oriented_size(image: Image.Image) -> tuple[int, int]:
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:
        orientation = 1
    w, h = image.size
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def _check_canvas(image: Image.Image, size_bytes: int, limits: ImageLimits) -> tuple[int, int]:
    width, height = _oriented_size(image)
    pixels = width * height
    if pixels > ABSOLUTE_MAX_PIXELS or (
        pixels > BOMB_MIN_PIXELS and pixels > BOMB_PIXELS_PER_BYTE * size_bytes
    ):
        raise ImageRejected(
            "DecompressionBomb",
            f"refused as a decompression bomb: {width}x{height} pixels from {_human(size_bytes)}",
        )
    for name, value in (("width", width), ("height", height)):
        if not limits.min_dim <= value <= limits.max_dim:
            raise ImageRejected(
                "InvalidImageDimension",
                f"image {name} is {value} px; it must be in [{limits.min_dim}, {limits.max_dim}]",
            )
    return width, height


def inspect_image(data: bytes, limits: ImageLimits) -> ImageInfo:
    """Format, size and dimensions from the header only; raises ImageRejected."""
    image = _open(data, limits)
    width, height = _check_canvas(image, len(data), limits)
    return ImageInfo(format=image.format, width=width, height=height, size_bytes=len(data))


def decode_image(
    data: bytes, limits: ImageLimits, *, draft_size: tuple[int, int] | None = None
) -> tuple[Image.Image, ImageInfo]:
    """Fully decode to an RGB image with EXIF orientation applied; raises ImageRejected.

    ``draft_size`` (width, height): JPEGs may be decoded at a reduced scale no smaller than
    this, which keeps memory small for large photos headed for a small network input. The
    returned ImageInfo always carries the original dimensions.
    """
    image = _open(data, limits)
    width, height = _check_canvas(image, len(data), limits)
    info = ImageInfo(format=image.format, width=width, height=height, size_bytes=len(data))
    try:
        if draft_size is not None and image.format in ("JPEG", "MPO"):
            image.draft("RGB", draft_size)
        image.load()
        image = ImageOps.exif_transpose(image)
        if image.mode != "RGB":
            image = _to_rgb(image)
    except ImageRejected:
        raise
    except Exception as exc:
        raise ImageRejected("InvalidImageFormat", f"the image data is corrupt or truncated: {exc}") from None
    return image, info


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")
