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


_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel


def png_rows(
    width: int, height: int, *, color_type: int = 2, bit_depth: int = 8, noisy_every: int = 0, seed: int = 0
) -> bytes:
    """A real, complete PNG written row by row, so a huge canvas costs the builder no memory.

    Rows are zeros (a decompression bomb: deflate's best ratio, about 1000:1) except every
    ``noisy_every``-th row, which is random bytes (incompressible): that sets the file size, so
    the same builder makes bombs and large legitimate images. Colour types: 0 grey, 2 RGB,
    4 grey+alpha, 6 RGBA; bit depth 8 or 16 (16-bit grey opens in Pillow as mode I;16).
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row_bytes = width * _PNG_CHANNELS[color_type] * bit_depth // 8
    zero_row = b"\x00" * (row_bytes + 1)  # filter byte 0 (None) + samples
    rng = np.random.default_rng(seed)
    compressor = zlib.compressobj(9)
    parts = []
    for y in range(height):
        if noisy_every and y % noisy_every == 0:
            parts.append(compressor.compress(b"\x00" + rng.bytes(row_bytes)))
        else:
            parts.append(compressor.compress(zero_row))
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def padded(header: bytes, size: int) -> bytes:
    """``header`` (a PNG or JPEG whose header claims some canvas) padded with junk to ``size`` bytes:
    a file that size for the header-only checks, which never read that far."""
    return header + b"\x00" * max(0, size - len(header))


def jpeg_claiming(width: int, height: int) -> bytes:
    """A tiny real JPEG whose frame header (SOF0) is rewritten to claim ``width`` x ``height``."""
    data = bytearray(encode(Image.new("RGB", (16, 16), (120, 80, 40)), "JPEG", quality=90))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)
