"""Downloading a dataset into a job's working folder: its COCO files are validated again (they
may have changed since registration) and every image is fetched and decoded once, with bounded
concurrency, so a missing or corrupt image ends the run as ``datasetCorrupt`` naming the files.
"""
from __future__ import annotations

import logging
import posixpath
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from loupe.coco import ImageEntry, Purpose, parse_and_validate
from loupe.enums import AnnotationKind, TrainingErrorCode
from loupe.imaging import EVALUATION_LIMITS, TRAINING_LIMITS, ImageLimits, ImageRejected, decode_image
from loupe.jobs.spec import DatasetSource
from loupe.runner.examples import Example, LocalDataset, add_annotation
from loupe.settings import Settings
from loupe.storage.blob_access import BlobLocation, BlobReader, BlobReadError, BlobUrlError
from loupe.storage.clients import Storage
from loupe.storage.dataset_files import MAX_ANNOTATION_FILE_BYTES, AnnotationFileUnreadable, DatasetFiles

log = logging.getLogger(__name__)

MAX_LISTED = 20
_SAFE_SUFFIX = re.compile(r"^\.[a-z0-9]{1,5}$")


class DatasetUnavailable(Exception):
    def __init__(self, code: TrainingErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Fetch:
    """One image to fetch: its COCO entry, where it goes, and the annotation file it came from."""

    entry: ImageEntry
    example: Example
    coco: BlobLocation


def _suffix(name: str) -> str:
    suffix = posixpath.splitext(name)[1].lower()
    return suffix if _SAFE_SUFFIX.match(suffix) else ".img"


class _Download:
    def __init__(self, source: DatasetSource, folder: Path, storage: Storage, settings: Settings,
                 purpose: Purpose, label_space: list[str] | None) -> None:
        sas = source.sas_token.get_secret_value() if source.sas_token else None
        self.source, self.folder, self.settings, self.purpose = source, folder, settings, purpose
        self.files = DatasetFiles(BlobReader(storage, source.auth_kind, sas), settings)
        self.label_space = label_space
        self.labels: list[str] = list(label_space or [])
        self.work: list[_Fetch] = []

    def _corrupt(self, message: str) -> DatasetUnavailable:
        return DatasetUnavailable(TrainingErrorCode.DATASET_CORRUPT, message)

    def read_annotation_file(self, index: int, uri: str) -> None:
        what = f"annotation file {index + 1} of dataset '{self.source.name}'"
        try:
            location = self.files.locate(uri, index)
            data = self.files.reader.read(location, MAX_ANNOTATION_FILE_BYTES)
        except AnnotationFileUnreadable as exc:
            raise DatasetUnavailable(TrainingErrorCode.DATASET_NOT_FOUND, exc.message) from None
        except BlobReadError as exc:
            code = TrainingErrorCode.DATASET_CORRUPT if exc.code == "BlobTooLarge" else TrainingErrorCode.DATASET_NOT_FOUND
            raise DatasetUnavailable(code, f"{what}: {exc.message}") from None
        report, doc = parse_and_validate(data, purpose=self.purpose, expected_kind=self.source.annotation_kind,
                                         url_allowed=self.files.image_url_allowed(location))
        if doc is None:
            listed = "; ".join(f"{e.target}: {e.message}" for e in report.errors[:5])
            raise self._corrupt(f"{what} is no longer valid ({report.error_count} problems): {listed}")
        category_index = {category["id"]: self._label(category["name"]) for category in doc["categories"]}
        by_image: dict[int, Example] = {}
        entries = {entry.id: entry for entry in report.images}
        for image in doc["images"]:
            entry = entries[image["id"]]
            example = Example(self.folder / f"{index}_{entry.id}{_suffix(entry.url or entry.file_name)}",
                              f"file {index + 1} {entry.describe()}", entry.width, entry.height,
                              key=entry.file_name)
            by_image[entry.id] = example
            self.work.append(_Fetch(entry, example, location))
        detection = self.source.annotation_kind is AnnotationKind.DETECTION
        for annotation in doc["annotations"]:
            add_annotation(by_image[annotation["image_id"]], category_index[annotation["category_id"]],
                           annotation.get("bbox") if detection else None)

    def _label(self, name: str) -> int:
        if name not in self.labels:
            if self.label_space is not None:
                raise self._corrupt(f"category '{name}' of dataset '{self.source.name}' is not one the model "
                                    f"knows ({', '.join(self.label_space)})")
            self.labels.append(name)
        return self.labels.index(name)

    def fetch_images(self, progress: Callable[[int, int], None] | None) -> None:
        limits = TRAINING_LIMITS if self.purpose is Purpose.TRAINING else EVALUATION_LIMITS
        self.folder.mkdir(parents=True, exist_ok=True)
        problems: list[str] = []
        with ThreadPoolExecutor(max_workers=max(1, self.settings.image_check_concurrency)) as pool:
            for done, problem in enumerate(pool.map(lambda item: self._fetch(item, limits), self.work), start=1):
                if problem:
                    problems.append(problem)
                if progress is not None:
                    progress(done, len(self.work))
        if problems:
            listed = "; ".join(problems[:MAX_LISTED])
            more = f" (and {len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else ""
            raise self._corrupt(f"{len(problems)} of {len(self.work)} images of dataset '{self.source.name}' could "
                                f"not be used: {listed}{more}")

    def _fetch(self, item: _Fetch, limits: ImageLimits) -> str | None:
        try:
            location = self.files.image_location(item.entry.url, item.entry.file_name, item.coco)
            data = self.files.reader.read(location, limits.max_bytes)
            _, info = decode_image(data, limits, draft_size=(64, 64))
        except (BlobReadError, BlobUrlError, ImageRejected) as exc:
            return f"{item.example.source}: {getattr(exc, 'message', str(exc))}"
        item.example.width, item.example.height = info.width, info.height
        item.example.path.write_bytes(data)
        return None

    def dataset(self) -> LocalDataset:
        images = [item.example for item in self.work]
        if self.source.annotation_kind is AnnotationKind.CLASSIFICATION:
            images = [image for image in images if image.labels]  # unlabelled images teach a classifier nothing
        return LocalDataset(self.source.name, self.source.annotation_kind, self.labels, images)


def download_dataset(source: DatasetSource, folder: Path, storage: Storage, settings: Settings, *,
                     purpose: Purpose = Purpose.TRAINING, label_space: list[str] | None = None,
                     progress: Callable[[int, int], None] | None = None) -> LocalDataset:
    """Fetch ``source`` into ``folder``; raises DatasetUnavailable (datasetNotFound / datasetCorrupt)."""
    download = _Download(source, folder, storage, settings, purpose, label_space)
    for index, uri in enumerate(source.annotation_file_uris):
        download.read_annotation_file(index, uri)
    download.fetch_images(progress)
    return download.dataset()
