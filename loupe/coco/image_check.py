"""Image checks: fetch and fully decode the images a validated COCO file references.

Every image of a small dataset is checked; a large one gets a seeded random sample up front (the
trainer verifies the rest as it downloads them). The caller supplies ``fetch`` (Azure Blob,
Azurite, a dict in tests) so this module knows nothing about storage.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from loupe.coco.issues import IssueCollector
from loupe.coco.quotas import Purpose, dimension_range
from loupe.coco.report import CocoReport, ImageCheckResult, ImageEntry
from loupe.errors import shown
from loupe.imaging import TRAINING_LIMITS, ImageLimits, ImageRejected, decode_image

IMAGE_NOT_FOUND = "ImageNotFound"
IMAGE_ACCESS_DENIED = "ImageAccessDenied"
IMAGE_FETCH_FAILED = "ImageFetchFailed"
# 20 MB for training and evaluation images alike (docs/wire-contract.md#limits)
MAX_IMAGE_BYTES = TRAINING_LIMITS.max_bytes

# JPEGs decode at 1/8 scale when that still covers this size: the whole stream is still read
# (so truncation is caught) at a fraction of the memory and time.
DRAFT_SIZE = (64, 64)


class ImageFetchError(Exception):
    """Raised by a fetcher: ``code`` is IMAGE_NOT_FOUND, IMAGE_ACCESS_DENIED or IMAGE_FETCH_FAILED."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def image_limits_for(purpose: Purpose) -> ImageLimits:
    """Decoding limits that agree with the structure check's dimension range for ``purpose``."""
    min_dim, max_dim = dimension_range(purpose)
    return ImageLimits(max_bytes=MAX_IMAGE_BYTES, min_dim=min_dim, max_dim=max_dim)


# (is_error, code, target, message)
_Finding = tuple[bool, str, str, str]


def _check_one(
    entry: ImageEntry,
    fetch: Callable[[ImageEntry], bytes],
    limits: ImageLimits,
    decode_slots: threading.Semaphore,
) -> list[_Finding]:
    where = entry.describe()
    try:
        data = fetch(entry)
    except ImageFetchError as exc:
        return [(True, exc.code, entry.target, f"{where}: {shown(exc.message)}")]
    except Exception as exc:  # a fetcher bug or a network error must not abort the whole check
        return [
            (
                True,
                IMAGE_FETCH_FAILED,
                entry.target,
                f"{where}: could not be fetched ({type(exc).__name__}: {shown(str(exc))})",
            )
        ]
    # Decoding is CPU- and memory-bound: at most one decode per core, however many fetches run.
    with decode_slots:
        try:
            image, info = decode_image(bytes(data), limits, draft_size=DRAFT_SIZE)
            image.close()
        except ImageRejected as exc:
            return [(True, exc.code, entry.target, f"{where}: {shown(exc.message)}")]
        except Exception as exc:
            return [(True, "InvalidImageFormat", entry.target, f"{where}: cannot be decoded ({shown(str(exc))})")]
    declared = (entry.width, entry.height)
    if (
        entry.width
        and entry.height
        and declared != (info.width, info.height)
        and declared != (info.height, info.width)
    ):  # EXIF-rotated sizes are both fine
        return [
            (
                False,
                "ImageSizeMismatch",
                entry.target,
                f"{where}: the file declares {entry.width}x{entry.height} pixels, the image is "
                f"{info.width}x{info.height}",
            )
        ]
    return []


def check_images(
    report: CocoReport,
    fetch: Callable[[ImageEntry], bytes],
    *,
    limits: ImageLimits,
    full_limit: int,
    sample_size: int,
    concurrency: int,
    seed: int = 0,
) -> ImageCheckResult:
    """Fetch and decode the report's images: all when ``report.image_count <= full_limit``, else a
    seeded random sample of ``sample_size``. Never raises for a bad image or a failing fetch."""
    entries = report.images
    if report.image_count <= full_limit:
        chosen = list(entries)
    else:
        chosen = random.Random(seed).sample(entries, min(sample_size, len(entries)))
        chosen.sort(key=lambda e: e.index)
    errors, warnings = IssueCollector("error"), IssueCollector("warning")
    if chosen:
        workers = max(1, min(concurrency, len(chosen)))
        decode_slots = threading.BoundedSemaphore(max(1, min(workers, os.cpu_count() or 1)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="image-check") as pool:
            for findings in pool.map(lambda e: _check_one(e, fetch, limits, decode_slots), chosen):
                for is_error, code, target, message in findings:
                    (errors if is_error else warnings).add(code, target, message)
    depth = "none" if not chosen else "full" if len(chosen) == len(entries) else "sample"
    return ImageCheckResult(
        depth=depth,
        checked=len(chosen),
        total=report.image_count,
        errors=errors.issues(),
        warnings=warnings.issues(),
        error_count=errors.total,
        warning_count=warnings.total,
    )
