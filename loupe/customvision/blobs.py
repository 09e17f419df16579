"""Image blobs of Custom Vision projects and their time-limited read links (docs/customvision.md#storage).

An uploaded image is kept as sent (``original``) with two JPEG copies made once, at upload: a
``resized`` one (longest side at most RESIZED_SIDE, what a labelling tool shows) and a
``thumbnail`` (longest side at most THUMBNAIL_SIDE). Links are read-only SAS URLs that expire
after ``customvision_link_seconds`` (loupe.storage.signing: the account key on Azurite, a user
delegation key of the app's managed identity on Azure).
"""
from __future__ import annotations

import io
from urllib.parse import quote

from azure.storage.blob import ContentSettings
from PIL import Image

from loupe.storage.clients import Storage
from loupe.storage.signing import BlobSigner

RESIZED_SIDE = 1024
THUMBNAIL_SIDE = 200
JPEG = ContentSettings(content_type="image/jpeg")


def image_prefix(project_id: str, image_id: str) -> str:
    return f"{project_id}/images/{image_id}/"


def prediction_blob(project_id: str, prediction_id: str) -> str:
    return f"{project_id}/predictions/{prediction_id}/original"


def _jpeg(picture: Image.Image, side: int) -> bytes:
    copy = picture.copy()
    copy.thumbnail((side, side), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    copy.save(out, "JPEG", quality=90)
    return out.getvalue()


class ImageBlobs:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.settings = storage.settings
        self._signer = BlobSigner(storage, self.settings.customvision_container, self.settings.customvision_link_seconds)

    @property
    def container(self):
        return self.storage.container(self.settings.customvision_container)

    def put_image(self, project_id: str, image_id: str, data: bytes, picture: Image.Image) -> None:
        """The original bytes and its two JPEG copies (written before the image's record: a
        record never points at missing blobs)."""
        prefix = image_prefix(project_id, image_id)
        container = self.container
        container.upload_blob(prefix + "original", data, overwrite=True)
        container.upload_blob(prefix + "resized", _jpeg(picture, RESIZED_SIDE), overwrite=True, content_settings=JPEG)
        container.upload_blob(prefix + "thumbnail", _jpeg(picture, THUMBNAIL_SIDE), overwrite=True,
                              content_settings=JPEG)

    def put(self, blob_name: str, data: bytes, content_type: str | None = None) -> None:
        settings = ContentSettings(content_type=content_type) if content_type else None
        self.container.upload_blob(blob_name, data, overwrite=True, content_settings=settings)

    def read(self, blob_name: str) -> bytes:
        return self.container.download_blob(blob_name).readall()

    def delete_prefix(self, prefix: str) -> None:
        container = self.container
        for blob in container.list_blobs(name_starts_with=prefix):
            container.delete_blob(blob.name)

    def url(self, blob_name: str) -> str:
        """The blob's URL without a token (what snapshots reference; only Loupe reads it)."""
        return f"{self.storage.blob_account_url}/{self.settings.customvision_container}/{quote(blob_name)}"

    def link(self, blob_name: str) -> str:
        """A read-only URL of the blob that expires (a plain GET fetches it, no key needed)."""
        return self._signer.link(blob_name)
