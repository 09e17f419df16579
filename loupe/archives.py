"""Zip extraction that cannot be turned against the host (docs/formats.md#limits): every entry's name
and declared size are checked from the central directory BEFORE anything is written, and the sizes
are enforced again while reading (a forged header cannot make an entry longer than it declared).

A leaf module with no dependencies, so both the dataset importers (loupe.formats.bounds) and the
trainer's conversion cache (trainer.packages.tf_package), which the import contracts keep apart,
share one set of checks."""
from __future__ import annotations

import posixpath
import zipfile
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1024 * 1024
# entries below this size are not judged by their ratio: a small run of zeros compresses 1000:1
RATIO_FLOOR_BYTES = 1024**2


class UnsafeArchive(ValueError):
    """A zip refused before or while extracting; ``place`` names the archive or the entry."""

    def __init__(self, place: str, message: str) -> None:
        super().__init__(f"{place}: {message}")
        self.place = place
        self.message = message


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int
    max_uncompressed_bytes: int
    max_compression_ratio: int  # an entry over RATIO_FLOOR_BYTES beyond this is a bomb


def safe_member_name(name: str) -> str:
    """A zip entry's name, normalised; refused when it could land outside the extraction folder."""
    place = f"zip entry {name!r}"
    if "\\" in name:
        raise UnsafeArchive(place, "backslashes are not allowed in entry names")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(place, "absolute paths are not allowed")
    if any(part == ".." for part in name.split("/")):
        raise UnsafeArchive(place, "'..' is not allowed in entry names (path traversal)")
    normal = posixpath.normpath(name)
    if normal.startswith("../") or normal == "..":
        raise UnsafeArchive(place, "the entry resolves outside the archive")
    return normal


def extract_zip(archive: Path, dest: Path, limits: ZipLimits) -> None:
    """Every entry of ``archive`` into ``dest``, or UnsafeArchive (what was written before a
    damaged entry was found stays: the caller owns ``dest`` and removes it)."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise UnsafeArchive(str(archive), f"not a readable zip file ({exc})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_entries:
            raise UnsafeArchive(str(archive), f"{len(infos):,} entries, more than {limits.max_entries:,} "
                                "(docs/formats.md#limits)")
        total = 0
        for info in infos:
            safe_member_name(info.filename)
            total += info.file_size
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > RATIO_FLOOR_BYTES and ratio > limits.max_compression_ratio:
                raise UnsafeArchive(f"zip entry {info.filename!r}", f"compression ratio {ratio:,.0f}:1 is beyond "
                                    f"{limits.max_compression_ratio}:1: refused as a zip bomb (docs/formats.md#limits)")
        if total > limits.max_uncompressed_bytes:
            raise UnsafeArchive(str(archive), f"{total:,} bytes uncompressed, more than "
                                f"{limits.max_uncompressed_bytes:,}: refused before extracting (docs/formats.md#limits)")
        for info in infos:
            _extract_one(zf, info, dest)


def _extract_one(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path) -> None:
    target = dest / safe_member_name(info.filename)
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        with zf.open(info) as src, target.open("wb") as out:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                if written > info.file_size:
                    raise UnsafeArchive(f"zip entry {info.filename!r}", "longer than its declared size")
                out.write(chunk)
    except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
        # a bad CRC, a truncated stream, an unsupported method or an encrypted entry
        raise UnsafeArchive(f"zip entry {info.filename!r}", f"cannot be read ({exc})") from None
