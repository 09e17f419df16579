"""Bounds on what a conversion reads (docs/formats.md#limits): files, bytes, and for a zip its
entries, their uncompressed total and their names, all checked from the zip's central directory
BEFORE anything is extracted (loupe/archives.py), so a zip bomb or a path-traversal entry never
touches the disk."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from loupe import archives
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
    try:
        return archives.safe_member_name(name)
    except archives.UnsafeArchive as exc:
        raise FormatError(exc.place, exc.message) from None


def extract_zip(archive: Path, dest: Path, limits: Limits) -> None:
    """The checks of loupe/archives.py (shared with the trainer), as a FormatError."""
    zip_limits = archives.ZipLimits(limits.max_zip_entries, limits.max_zip_uncompressed_bytes,
                                    limits.max_compression_ratio)
    try:
        archives.extract_zip(archive, dest, zip_limits)
    except archives.UnsafeArchive as exc:
        raise FormatError(exc.place, exc.message) from None
