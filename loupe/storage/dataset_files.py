"""Where a dataset's files are: its annotation files (by URI) and the images they reference
(a relative ``file_name`` next to the annotation file, or an image URL in an allowed account).

Shared by registration-time validation (``loupe.datasets``) and the job-side download
(``loupe.runner``), so both read exactly the same blobs under the same rules.

Loupe's own storage account is read with Loupe's own credentials, and it also holds private
containers (``models``: trained models, job specs with SAS tokens). A dataset's URLs may
therefore point into that account only inside the datasets container (docs/wire-contract.md#limits);
any other container of it is refused, whatever the dataset's authentication.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from loupe.settings import Settings
from loupe.storage.blob_access import (
    BlobLocation,
    BlobReader,
    BlobReadError,
    BlobUrlError,
    ForeignAccountError,
    parse_blob_url,
)

MAX_ANNOTATION_FILE_BYTES = 512 * 1024 * 1024

# scheme://host[:port]/ spelled in lower case (how nearly every URL is written)
_LOWER_ORIGIN = re.compile(r"(https?://[a-z0-9.\-]+(?::[0-9]{1,5})?)/").match
# a URL whose container could differ from what its text seems to say (dot segments, encoded
# slashes or dots, backslashes): judged on its own
_UNUSUAL_PATH = re.compile(r"/(?:\.|%2[eE])|%2[fF]|%5[cC]|\\").search


class AnnotationFileUnreadable(Exception):
    """An annotation URI that is malformed, not allowed, or can't be read (DatasetInvalidAnnotationUri)."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.target = f"annotationFileUris[{index}]"
        self.message = message


class ImageUrlPolicy:
    """Which image URLs an annotation file may reference: called with a URL, says whether it may
    be read. ``scope`` and ``why`` serve loupe.coco's per-key cache of verdicts."""

    def __init__(self, files: "DatasetFiles", coco: BlobLocation) -> None:
        self.files = files
        self.coco = coco
        own = files.storage.blob_account_url
        self.own_origin = f"{urlsplit(own).scheme}://{urlsplit(own).netloc}".lower()
        self.own_prefix = own.rstrip("/") + "/"

    def __call__(self, url: str) -> bool:
        try:
            location = parse_blob_url(url, self.files.storage)
        except BlobUrlError:
            return False
        if self.files.private_container(location):
            return False
        if self.files.settings.allow_any_image_host:
            return True
        # the COCO file's own account, Loupe's account, or an operator-allowed host
        if location.account_url in (self.coco.account_url, self.files.storage.blob_account_url):
            return True
        allowed_hosts = {entry.lower().partition("/")[0] for entry in self.files.settings.allowed_storage_hosts}
        return urlsplit(location.account_url).netloc in allowed_hosts

    def why(self, url: str) -> str | None:
        """The reason for a refusal other than an image host that is not allowed, else None."""
        try:
            return self.files.private_container(parse_blob_url(url, self.files.storage))
        except ForeignAccountError:
            return None
        except BlobUrlError as exc:
            return str(exc)

    def scope(self, url: str) -> str:
        """The key a verdict holds for: the origin of another account, the container in Loupe's own
        account, and the URL itself when it is spelled unusually."""
        m = _LOWER_ORIGIN(url)
        if m is None or _UNUSUAL_PATH(url):
            return url
        if m[1] != self.own_origin:
            return m[1]
        if not url.startswith(self.own_prefix):
            return url
        return self.own_prefix + url[len(self.own_prefix):].split("/", 1)[0] + "/"


class DatasetFiles:
    def __init__(self, reader: BlobReader, settings: Settings) -> None:
        self.reader = reader
        self.settings = settings
        self.storage = reader.storage

    def private_container(self, location: BlobLocation) -> str | None:
        """Why ``location`` may not be read for a dataset (a private container of Loupe's account), or None."""
        if location.account_url != self.storage.blob_account_url:
            return None
        allowed = self.settings.datasets_container
        # the Custom Vision container holds only images (its projects' training snapshots read them)
        if location.container.lower() in (allowed.lower(), self.settings.customvision_container.lower()):
            return None
        return (f"'{location.container[:64]}' is a private container of Loupe's storage account; in that account "
                f"datasets may only be read from the '{allowed}' container")

    def locate(self, uri: str, index: int) -> BlobLocation:
        try:
            location = parse_blob_url(uri, self.storage)
        except BlobUrlError as exc:
            raise AnnotationFileUnreadable(index, f"annotationFileUris[{index}]: {exc}") from None
        refusal = self.private_container(location)
        if refusal:
            raise AnnotationFileUnreadable(index, f"annotationFileUris[{index}]: {refusal}")
        return location

    def read_annotation_file(self, location: BlobLocation, index: int,
                             max_bytes: int = MAX_ANNOTATION_FILE_BYTES) -> bytes:
        try:
            return self.reader.read(location, min(max_bytes, MAX_ANNOTATION_FILE_BYTES))
        except BlobReadError as exc:
            raise AnnotationFileUnreadable(index, f"annotationFileUris[{index}]: {exc.message}") from None

    def image_url_allowed(self, coco: BlobLocation) -> ImageUrlPolicy:
        """Which image URLs an annotation file at ``coco`` may reference."""
        return ImageUrlPolicy(self, coco)

    def image_location(self, url: str | None, file_name: str, coco: BlobLocation) -> BlobLocation:
        """The blob of an image given by URL, or by ``file_name`` relative to the annotation file."""
        location = parse_blob_url(url, self.storage) if url else coco.sibling(file_name)
        refusal = self.private_container(location)
        if refusal:
            raise BlobUrlError(refusal)
        return location
