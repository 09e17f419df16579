"""Safe image inspection and decoding, shared by dataset validation, the trainer and prediction.

Every image Loupe touches comes from a user. Headers are read before any pixel is decoded, and
what the decode will allocate (pixels x Pillow's bytes per pixel for the mode, after a JPEG's
draft scaling, plus the working copies of the conversion to RGB) is bounded before it starts:
a decompression bomb (a small file that decodes to a huge buffer, in any mode) is refused, a
large legitimate image is decoded within a per-image and a per-process memory budget, and large
non-JPEG images are reduced before conversion when the caller only needs a small image.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import io
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageFile, UnidentifiedImageError

# Formats of the retired service's docs plus the ones Pillow reads safely (issue #2).
ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "GIF", "BMP", "WEBP", "ICO", "TIFF", "MPO"})
# A hard ceiling on decoded pixels, whatever the caller allows: 16000 x 16000 is the largest
# canvas the service accepts at all (prediction); bigger is refused before decoding.
ABSOLUTE_MAX_PIXELS = 16000 * 16000
# Beyond this many pixels, a canvas far bigger than its file is a decompression bomb (the first rule;
# it still catches 1-byte-a-pixel bombs below the decoded-bytes rule's floor).
BOMB_MIN_PIXELS = 25_000_000
BOMB_PIXELS_PER_BYTE = 1000
MiB = 1024 * 1024
# The compression-ratio rule, on the bytes the decode allocates rather than on pixels (a colour
# pixel is 4 bytes, so a pixel rule lets 4x bigger colour bombs through). Real photos and
# screenshots of that size stay far under 200:1; deflate bombs of zeros reach about 1000:1 (1400:1
# on Pillow's 4-byte RGB). Small decodes may compress arbitrarily well: they cost little.
BOMB_MAX_RATIO = 200
BOMB_RATIO_MIN_BYTES = 64 * MiB
# Non-JPEG images whose decode is bigger than this are reduced (box filter, integer factor) before
# conversion to RGB when the caller asked for a draft size; smaller ones are decoded exactly as
# before, so predictions on ordinary images do not change.
REDUCE_MIN_BYTES = 64 * MiB
# All decodes in one process together: a burst of large (legitimate) images waits for memory
# instead of taking it all at once. No single image may need more than this.
PROCESS_DECODE_BUDGET = 1024 * MiB
# Pillow's in-memory bytes per pixel (libImaging/Storage.c): 3-band and LA/PA modes are padded to 4.
_STORAGE_BYTES = {
    "1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2, "LA": 4, "La": 4, "PA": 4,
    "RGB": 4, "RGBA": 4, "RGBa": 4, "RGBX": 4, "CMYK": 4, "YCbCr": 4, "LAB": 4, "HSV": 4, "I": 4, "F": 4,
}
_UNKNOWN_MODE_BYTES = 8  # a mode Pillow may add later: assume the worst of the known ones, doubled

ImageFile.LOAD_TRUNCATED_IMAGES = False
# Pillow's own guard stays on as a backstop behind ours (a warning above it is an error in _open), at
# our ceiling: a 16000 x 16000 JPEG is decoded at its draft size, and _plan bounds the rest.
Image.MAX_IMAGE_PIXELS = ABSOLUTE_MAX_PIXELS


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
    # the most one decode may allocate at its peak (decoded image + conversion copies); the
    # default fits every 10240 x 10240 training image, RGBA included (400 MiB + its premultiplied
    # copy), and 16000 x 16000 evaluation images in 8-bit grey or RGB (reduced before conversion)
    max_decode_bytes: int = PROCESS_DECODE_BUDGET


# docs/wire-contract.md#limits quotas
TRAINING_LIMITS = ImageLimits(max_bytes=20 * 1024 * 1024, min_dim=10, max_dim=10240)
# 10 px, not the checker's 50: small-image test sets (CIFAR, GTSRB) are legitimate evaluation data;
# 50 px is the prediction API's minimum (loupe.coco.quotas agrees).
EVALUATION_LIMITS = ImageLimits(max_bytes=20 * 1024 * 1024, min_dim=10, max_dim=16000)
# Prediction serves many callers at once: any JPEG up to 16000 px (decoded at the draft size), and
# non-JPEG images of up to 512 MiB decoded (e.g. 11585 x 11585 RGB, 16000 x 16000 grayscale).
PREDICTION_LIMITS = ImageLimits(max_bytes=6 * 1024 * 1024, min_dim=50, max_dim=16000, max_decode_bytes=512 * MiB)


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


def _orientation(image: Image.Image, *, loaded: bool = False) -> int:
    """The EXIF orientation, without decoding: Pillow's PNG getexif() decodes the whole image to
    look for an eXIf chunk after the pixel data, so before load() a PNG's comes from its header only."""
    if not loaded and image.format == "PNG" and "exif" not in image.info:
        return 1
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:
        return 1
    return orientation if isinstance(orientation, int) else 1


def _oriented_size(image: Image.Image, *, loaded: bool = False) -> tuple[int, int]:
    w, h = image.size
    return (h, w) if _orientation(image, loaded=loaded) in (5, 6, 7, 8) else (w, h)


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


_JPEG_FORMATS = ("JPEG", "MPO")
_ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


@dataclass(frozen=True)
class _Plan:
    """What decoding one image will cost, known from its header (and a JPEG's draft) alone."""

    decoded: int  # bytes of the decoded image in Pillow's memory
    peak: int  # at most this many bytes at once: the decoded image plus the working copies
    factor: int  # Image.reduce() factor applied before conversion to RGB (1: none)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info)


def _reduce_target(image: Image.Image) -> str | None:
    """The mode to convert to before Image.reduce() (full size), or None when it reduces as is."""
    if image.mode in ("L", "RGB", "I", "F", "CMYK", "LA", "RGBA"):
        return None
    return "RGBA" if _has_alpha(image) else "L" if image.mode == "1" else "RGB"


def _plan(image: Image.Image, draft_size: tuple[int, int] | None) -> _Plan:
    """Bytes the decode below allocates: the image at its stored (drafted) size, the EXIF
    transposition, and the conversion to RGB; large non-JPEGs are reduced before converting."""
    width, height = image.size
    pixels = width * height
    decoded = pixels * _STORAGE_BYTES.get(image.mode, _UNKNOWN_MODE_BYTES)
    orientation = _orientation(image)
    # a PNG may name its orientation only after its pixels: count a transposition in
    unknown = image.format == "PNG" and "exif" not in image.info
    transpose = _TRANSPOSE.get(orientation)
    factor = 1
    if draft_size is not None and image.format not in _JPEG_FORMATS and decoded > REDUCE_MIN_BYTES:
        factor = max(1, min(width // max(1, draft_size[0]), height // max(1, draft_size[1])))
    if factor > 1:
        target = _reduce_target(image)
        converted = 0 if target is None else pixels * _STORAGE_BYTES[target]
        # reduce() premultiplies LA/RGBA into a full-size copy; the rest works on the reduced image
        premultiplied = pixels * 4 if (target or image.mode) in ("LA", "RGBA") else 0
        small = -(-width // factor) * -(-height // factor) * 4
        return _Plan(decoded, decoded + converted + premultiplied + 3 * small, factor)
    # as decoded: an RGBA image is pasted onto a white background (one copy); LA/PA/P with
    # transparency go through RGBA first (two); other modes are converted (one)
    rgb_copies = 0 if image.mode == "RGB" else 1 if image.mode == "RGBA" else 2 if _has_alpha(image) else 1
    peak = decoded + (decoded if transpose is not None or unknown else 0) + rgb_copies * pixels * 4
    return _Plan(decoded, peak, 1)


def _check_plan(image: Image.Image, plan: _Plan, size_bytes: int, limits: ImageLimits) -> None:
    """A decode far bigger than its file is a bomb; any decode over the budget is refused."""
    width, height = image.size
    what = f"{width}x{height} {image.mode} pixels decode to {plan.decoded / MiB:.0f} MB"
    ratio = plan.decoded / size_bytes
    if plan.decoded > BOMB_RATIO_MIN_BYTES and ratio > BOMB_MAX_RATIO:
        raise ImageRejected(
            "DecompressionBomb",
            f"refused as a decompression bomb: {what} from a {_human(size_bytes)} file ({ratio:.0f}:1; at most "
            f"{BOMB_MAX_RATIO}:1 is accepted for images over {BOMB_RATIO_MIN_BYTES // MiB} MB decoded)",
        )
    budget = min(limits.max_decode_bytes, PROCESS_DECODE_BUDGET)
    if plan.peak > budget:
        raise ImageRejected(
            "DecompressionBomb",
            f"refused as too large to decode: {what}, and decoding them needs {plan.peak / MiB:.0f} MB; "
            f"the limit is {budget // MiB} MB",
        )


class _MemoryBudget:
    """Bytes the decodes of this process may hold at once; a decode waits until its peak fits."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        nbytes = min(nbytes, self.total)
        with self._changed:
            self._changed.wait_for(lambda: self.used + nbytes <= self.total)
            self.used += nbytes
        try:
            yield
        finally:
            with self._changed:
                self.used -= nbytes
                self._changed.notify_all()


_DECODE_MEMORY = _MemoryBudget(PROCESS_DECODE_BUDGET)
# a forked child (a DataLoader worker) starts with its own, empty budget, never with a copied lock
os.register_at_fork(after_in_child=lambda: _DECODE_MEMORY.__init__(PROCESS_DECODE_BUDGET))


def _fixed_mmap_threshold(nbytes: int) -> None:
    """glibc serves big allocations from per-thread heaps once its adaptive mmap threshold has
    grown (up to 32 MiB, after the first big free), and keeps them after they are freed: a burst of
    large decodes on server threads left gigabytes resident. A fixed threshold maps every
    allocation of ``nbytes`` or more (Pillow's 16 MiB image blocks) and unmaps it on free."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, nbytes)  # M_MMAP_THRESHOLD; also turns the adaptive threshold off
    except (OSError, AttributeError):
        pass  # not glibc (macOS, musl): nothing to tune


_fixed_mmap_threshold(1 * MiB)


def inspect_image(
    data: bytes, limits: ImageLimits, *, draft_size: tuple[int, int] | None = None
) -> ImageInfo:
    """Format, size and dimensions from the header only; raises ImageRejected, also for an image
    that ``decode_image`` with the same arguments would refuse as a bomb or as too large."""
    image = _open(data, limits)
    width, height = _check_canvas(image, len(data), limits)
    if draft_size is not None and image.format in _JPEG_FORMATS:
        _draft(image, draft_size)
    _check_plan(image, _plan(image, draft_size), len(data), limits)
    return ImageInfo(format=image.format, width=width, height=height, size_bytes=len(data))


def _draft(image: Image.Image, draft_size: tuple[int, int]) -> None:
    try:
        image.draft("RGB", draft_size)
    except Exception as exc:
        raise ImageRejected("InvalidImageFormat", f"the image header cannot be read: {exc}") from None


def decode_image(
    data: bytes, limits: ImageLimits, *, draft_size: tuple[int, int] | None = None
) -> tuple[Image.Image, ImageInfo]:
    """Fully decode to an RGB image with EXIF orientation applied; raises ImageRejected.

    ``draft_size`` (width, height): JPEGs may be decoded at a reduced scale no smaller than
    this, which keeps memory small for large photos headed for a small network input; other
    images whose decode exceeds REDUCE_MIN_BYTES are box-reduced by an integer factor to no
    smaller than this before conversion. The returned ImageInfo always carries the original
    dimensions. What the decode allocates is checked before it starts (``_plan``).
    """
    image = _open(data, limits)
    fmt, stored = image.format, image.size  # stored: before a JPEG's draft scaling
    _check_canvas(image, len(data), limits)
    if draft_size is not None and image.format in _JPEG_FORMATS:
        _draft(image, draft_size)
    plan = _plan(image, draft_size)
    _check_plan(image, plan, len(data), limits)
    try:
        with _DECODE_MEMORY.hold(plan.peak):
            image.load()
            # read after load(): a PNG's eXIf chunk may follow its pixel data
            orientation = _orientation(image, loaded=True)
            if plan.factor > 1:
                target = _reduce_target(image)
                image = (image if target is None else image.convert(target)).reduce(plan.factor)
            if orientation in _TRANSPOSE:
                image = image.transpose(_TRANSPOSE[orientation])
            if image.mode != "RGB":
                image = _to_rgb(image)
    except Exception as exc:
        raise ImageRejected("InvalidImageFormat", f"the image data is corrupt or truncated: {exc}") from None
    # the limits hold for width and height alike, so an orientation found only now changes no verdict
    width, height = stored[::-1] if orientation in (5, 6, 7, 8) else stored
    return image, ImageInfo(format=fmt, width=width, height=height, size_bytes=len(data))


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGBA":  # pasted with its own alpha as the mask: no converted copy, no alpha band copy
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image)
        return background
    if image.mode in ("LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        return _to_rgb(image.convert("RGBA"))
    return image.convert("RGB")
