"""Downloading a dataset for a trainer run: its COCO files are validated again (they may have
changed since registration) and every image is fetched and decoded once, with bounded
concurrency, so a missing or corrupt image ends the run as ``datasetCorrupt`` naming the files.
"""
from __future__ import annotations

import logging
import posixpath
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from loupe.coco import ImageEntry, Purpose, parse_and_validate
from loupe.datasets.validation import MAX_ANNOTATION_FILE_BYTES, AnnotationFileUnreadable, DatasetValidator
from loupe.enums import AnnotationKind, TrainingErrorCode
from loupe.imaging import EVALUATION_LIMITS, TRAINING_LIMITS, ImageRejected, decode_image
from loupe.jobs.spec import DatasetSource
from loupe.settings import Settings
from loupe.storage.blob_access import BlobReader, BlobReadError, BlobUrlError
from loupe.storage.clients import Storage

log = logging.getLogger(__name__)

MAX_LISTED = 20
_SAFE_SUFFIX = re.compile(r"^\.[a-z0-9]{1,5}$")


class DatasetUnavailable(Exception):
    def __init__(self, code: TrainingErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class LocalImage:
    path: Path
    source: str  # "images[3] (file_name 'a.jpg')" of which annotation file, for messages
    width: int  # oriented size of the real image
    height: int
    labels: list[int] = field(default_factory=list)  # category indices (distinct, classification)
    # detection: (category index, left, top, width, height) relative to the image
    boxes: list[tuple[int, float, float, float, float]] = field(default_factory=list)


@dataclass
class LocalDataset:
    name: str
    kind: AnnotationKind
    labels: list[str]
    images: list[LocalImage]

    @property
    def multilabel(self) -> bool:
        return self.kind is AnnotationKind.CLASSIFICATION and any(len(i.labels) > 1 for i in self.images)


def _suffix(name: str) -> str:
    suffix = posixpath.splitext(name)[1].lower()
    return suffix if _SAFE_SUFFIX.match(suffix) else ".img"


def download_dataset(source: DatasetSource, folder: Path, storage: Storage, settings: Settings, *,
                     purpose: Purpose = Purpose.TRAINING, label_space: list[str] | None = None,
                     progress: Callable[[int, int], None] | None = None) -> LocalDataset:
    """Fetch ``source`` into ``folder``; raises DatasetUnavailable (datasetNotFound / datasetCorrupt)."""
    sas = source.sas_token.get_secret_value() if source.sas_token else None
    reader = BlobReader(storage, source.auth_kind, sas)
    validator = DatasetValidator(reader, settings)
    limits = TRAINING_LIMITS if purpose is Purpose.TRAINING else EVALUATION_LIMITS
    labels: list[str] = list(label_space or [])
    work: list[tuple[ImageEntry, LocalImage, object]] = []
    for index, uri in enumerate(source.annotation_file_uris):
        try:
            location = validator.locate(uri, index)
            data = reader.read(location, MAX_ANNOTATION_FILE_BYTES)
        except AnnotationFileUnreadable as exc:
            raise DatasetUnavailable(TrainingErrorCode.DATASET_NOT_FOUND, exc.message) from None
        except BlobReadError as exc:
            code = TrainingErrorCode.DATASET_CORRUPT if exc.code == "BlobTooLarge" else TrainingErrorCode.DATASET_NOT_FOUND
            raise DatasetUnavailable(code, f"annotation file {index + 1} of dataset '{source.name}': {exc.message}") from None
        report, doc = parse_and_validate(data, purpose=purpose, expected_kind=source.annotation_kind,
                                         url_allowed=validator.image_url_allowed(location))
        if doc is None:
            listed = "; ".join(f"{e.target}: {e.message}" for e in report.errors[:5])
            raise DatasetUnavailable(TrainingErrorCode.DATASET_CORRUPT,
                                     f"annotation file {index + 1} of dataset '{source.name}' is no longer valid "
                                     f"({report.error_count} problems): {listed}")
        category_index = {}
        for category in doc["categories"]:
            name = category["name"]
            if name not in labels:
                if label_space is not None:
                    raise DatasetUnavailable(TrainingErrorCode.DATASET_CORRUPT,
                                             f"category '{name}' of dataset '{source.name}' is not one the model "
                                             f"knows ({', '.join(label_space)})")
                labels.append(name)
            category_index[category["id"]] = labels.index(name)
        by_image: dict[int, LocalImage] = {}
        entries = {entry.id: entry for entry in report.images}
        for image in doc["images"]:
            entry = entries[image["id"]]
            local = LocalImage(folder / f"{index}_{entry.id}{_suffix(entry.url or entry.file_name)}",
                               f"file {index + 1} {entry.describe()}", entry.width, entry.height)
            by_image[entry.id] = local
            work.append((entry, local, location))
        for annotation in doc["annotations"]:
            local = by_image[annotation["image_id"]]
            label = category_index[annotation["category_id"]]
            if "bbox" in annotation and source.annotation_kind is AnnotationKind.DETECTION:
                left, top, width, height = (float(v) for v in annotation["bbox"])
                local.boxes.append((label, left, top, width, height))
            if label not in local.labels:
                local.labels.append(label)
    folder.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    done = 0

    def fetch(item: tuple[ImageEntry, LocalImage, object]) -> str | None:
        entry, local, location = item
        try:
            data = reader.read(validator.image_location(entry, location), limits.max_bytes)
            _, info = decode_image(data, limits, draft_size=(64, 64))
        except (BlobReadError, BlobUrlError, ImageRejected) as exc:
            return f"{local.source}: {getattr(exc, 'message', str(exc))}"
        local.width, local.height = info.width, info.height
        local.path.write_bytes(data)
        return None

    with ThreadPoolExecutor(max_workers=max(1, settings.image_check_concurrency)) as pool:
        for problem in pool.map(fetch, work):
            done += 1
            if problem:
                problems.append(problem)
            if progress is not None:
                progress(done, len(work))
    if problems:
        listed = "; ".join(problems[:MAX_LISTED])
        more = f" (and {len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else ""
        raise DatasetUnavailable(TrainingErrorCode.DATASET_CORRUPT,
                                 f"{len(problems)} of {len(work)} images of dataset '{source.name}' could not be "
                                 f"used: {listed}{more}")
    images = [local for _, local, _ in work]
    if source.annotation_kind is AnnotationKind.CLASSIFICATION:
        images = [image for image in images if image.labels]  # unlabelled images teach a classifier nothing
    return LocalDataset(source.name, source.annotation_kind, labels, images)
