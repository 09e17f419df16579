"""Bounds on what a conversion reads (docs/formats.md#limits): files, bytes, and for a zip its
entries, their uncompressed total and their names, all checked from the zip's central directory
BEFORE anything is extracted, so a zip bomb or a path-traversal entry never touches the disk."""
from __future__ import annotations

import posixpath
import zipfile
from dataclasses import dataclass
from pathlib import Path

from loupe.formats.model import FormatError

# A dataset at the service's detection quota has 200,000 images; annotation files come on top.
MAX_FILES = 250_000
MAX_TOTAL_BYTES = 20 * 1024**3  # 20 GiB of images and annotations
MAX_ZIP_ENTRIES = MAX_FILES
MAX_ZIP_UNCOMPRESSED_BYTES = MAX_TOTAL_BYTES
MAX_COMPRESSION_RATIO = 200  # JPEG/PNG barely compress; a ratio beyond this is a bomb, not a dataset
MAX_ANNOTATION_FILE_BYTES = 512 * 1024**2  # one JSON/XML annotation file (loupe/datasets/limits.py)


@dataclass(frozen=True)
class Limits:
    max_files: int = MAX_FILES
    max_total_bytes: int = MAX_TOTAL_BYTES
    max_zip_entries: int = MAX_ZIP_ENTRIES
    max_zip_uncompressed_bytes: int = MAX_ZIP_UNCOMPRESSED_BYTES
    max_compression_ratio: int = MAX_COMPRESSION_RATIO
    max_annotation_file_bytes: int = MAX_ANNOTATION_FILE_BYTES


def list_files(root: Path, limits: Limits) -> list[str]:
    """Every regular file under ``root`` (POSIX paths relative to it, sorted; hidden files and
    __MACOSX skipped), within the file and byte limits. Symlinks are refused: they could point
    outside the dataset."""
    files: list[str] = []
    total = 0
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if any(part.startswith(".") or part == "__MACOSX" for part in rel.split("/")):
            continue
        if path.is_symlink():
            raise FormatError(rel, "symbolic links are not followed; copy the file in instead")
        if not path.is_file():
            continue
        files.append(rel)
        total += path.stat().st_size
        if len(files) > limits.max_files:
            raise FormatError(str(root), f"more than {limits.max_files:,} files (docs/formats.md#limits)")
        if total > limits.max_total_bytes:
            raise FormatError(str(root), f"more than {limits.max_total_bytes:,} bytes in all (docs/formats.md#limits)")
    if not files:
        raise FormatError(str(root), "the folder holds no files")
    return files


def safe_member_name(name: str) -> str:
    """A zip entry's name, refused when it could land outside the extraction folder."""
    if "\\" in name:
        raise FormatError(f"zip entry {name!r}", "backslashes are not allowed in entry names")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise FormatError(f"zip entry {name!r}", "absolute paths are not allowed")
    if any(part == ".." for part in name.split("/")):
        raise FormatError(f"zip entry {name!r}", "'..' is not allowed in entry names (path traversal)")
    normal = posixpath.normpath(name)
    if normal.startswith("../") or normal == "..":
        raise FormatError(f"zip entry {name!r}", "the entry resolves outside the archive")
    return normal


def extract_zip(archive: Path, dest: Path, limits: Limits) -> None:
    """Check every entry's name and declared size, then extract with the sizes enforced while
    reading (a forged header cannot make an entry longer than it declared)."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise FormatError(str(archive), f"not a readable zip file ({exc})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_zip_entries:
            raise FormatError(str(archive), f"{len(infos):,} entries, more than {limits.max_zip_entries:,} "
                              "(docs/formats.md#limits)")
        total = 0
        for info in infos:
            safe_member_name(info.filename)
            total += info.file_size
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > 1024**2 and ratio > limits.max_compression_ratio:
                raise FormatError(f"zip entry {info.filename!r}", f"compression ratio {ratio:,.0f}:1 is beyond "
                                  f"{limits.max_compression_ratio}:1: refused as a zip bomb (docs/formats.md#limits)")
        if total > limits.max_zip_uncompressed_bytes:
            raise FormatError(str(archive), f"{total:,} bytes uncompressed, more than "
                              f"{limits.max_zip_uncompressed_bytes:,}: refused before extracting (docs/formats.md#limits)")
        for info in infos:
            _extract_one(zf, info, dest)


def _extract_one(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path) -> None:
    target = dest / safe_member_name(info.filename)
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(info) as src, target.open("wb") as out:
        while chunk := src.read(1024 * 1024):
            written += len(chunk)
            if written > info.file_size:
                raise FormatError(f"zip entry {info.filename!r}", "longer than its declared size")
            out.write(chunk)
