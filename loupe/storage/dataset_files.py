"""Where a dataset's files are: its annotation files (by URI) and the images they reference
(a relative ``file_name`` next to the annotation file, or an image URL in an allowed account).

Shared by registration-time validation (``loupe.datasets``) and the job-side download
(``loupe.runner``), so both read exactly the same blobs under the same rules.
"""
from __future__ import annotations

from typing import Callable
from urllib.parse import urlsplit

from loupe.settings import Settings
from loupe.storage.blob_access import BlobLocation, BlobReader, BlobReadError, BlobUrlError, parse_blob_url

MAX_ANNOTATION_FILE_BYTES = 512 * 1024 * 1024


class AnnotationFileUnreadable(Exception):
    """An annotation URI that is malformed, not allowed, or can't be read (DatasetInvalidAnnotationUri)."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.target = f"annotationFileUris[{index}]"
        self.message = message


class DatasetFiles:
    def __init__(self, reader: BlobReader, settings: Settings) -> None:
        self.reader = reader
        self.settings = settings
        self.storage = reader.storage

    def locate(self, uri: str, index: int) -> BlobLocation:
        try:
            return parse_blob_url(uri, self.storage)
        except BlobUrlError as exc:
            raise AnnotationFileUnreadable(index, f"annotationFileUris[{index}]: {exc}") from None

    def read_annotation_file(self, location: BlobLocation, index: int) -> bytes:
        try:
            return self.reader.read(location, MAX_ANNOTATION_FILE_BYTES)
        except BlobReadError as exc:
            raise AnnotationFileUnreadable(index, f"annotationFileUris[{index}]: {exc.message}") from None

    def image_url_allowed(self, coco: BlobLocation) -> Callable[[str], bool]:
        """Which image URLs an annotation file at ``coco`` may reference."""
        allowed_hosts = {entry.lower().partition("/")[0] for entry in self.settings.allowed_storage_hosts}

        def allowed(url: str) -> bool:
            if self.settings.allow_any_image_host:
                return True
            try:
                location = parse_blob_url(url, self.storage)
            except BlobUrlError:
                return False
            # the COCO file's own account, Loupe's account, or an operator-allowed host
            if location.account_url in (coco.account_url, self.storage.blob_account_url):
                return True
            return urlsplit(location.account_url).netloc in allowed_hosts

        return allowed

    def image_location(self, url: str | None, file_name: str, coco: BlobLocation) -> BlobLocation:
        """The blob of an image given by URL, or by ``file_name`` relative to the annotation file."""
        if url:
            return parse_blob_url(url, self.storage)
        return coco.sibling(file_name)
