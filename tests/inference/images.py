"""Test images built in memory (nothing third-party)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

EXIF_ORIENTATION = 0x0112


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def white_box_on_black(width: int, height: int, box: tuple[int, int, int, int]) -> Image.Image:
    """A black RGB image with a white rectangle [x1, x2) x [y1, y2)."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    x1, y1, x2, y2 = box
    pixels[y1:y2, x1:x2] = 255
    return Image.fromarray(pixels)


def jpeg_with_orientation(displayed: Image.Image, orientation: int, quality: int = 95) -> bytes:
    """A JPEG whose stored pixels, once EXIF ``orientation`` is applied, look like ``displayed``."""
    # the inverse of what ImageOps.exif_transpose applies for each orientation
    inverse = {
        1: None,
        3: Image.Transpose.ROTATE_180,
        6: Image.Transpose.ROTATE_90,  # displayed = stored rotated 90 degrees clockwise
        8: Image.Transpose.ROTATE_270,
    }[orientation]
    stored = displayed.transpose(inverse) if inverse is not None else displayed
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return encode(stored, "JPEG", quality=quality, exif=exif.tobytes())


def noise_image(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8))


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares ``width`` x ``height`` (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
