"""Read-only, expiring links to blobs of Loupe's own storage (a plain GET fetches them, no key).

Signed with the account key locally (Azurite) and with a user delegation key of the app's managed
identity on Azure, where no account key exists (docs/customvision.md#storage). The same approach
as the Custom Vision image links (loupe/customvision/blobs.py), for any container.
"""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from azure.storage.blob import BlobSasPermissions, generate_blob_sas

from loupe.storage.clients import Storage

# a user delegation key is asked for this long, and renewed when less than a link's life remains
_DELEGATION_HOURS = 24


class BlobSigner:
    def __init__(self, storage: Storage, container: str, link_seconds: int) -> None:
        self.storage = storage
        self.container = container
        self.link_seconds = link_seconds
        self._lock = threading.Lock()
        self._delegation = None
        self._delegation_expiry: datetime | None = None

    def link(self, blob_name: str) -> str:
        """A read-only URL of ``blob_name`` that expires after ``link_seconds``."""
        now = datetime.now(timezone.utc)
        expiry = now + timedelta(seconds=self.link_seconds)
        service = self.storage.blob_service
        kwargs: dict = {}
        if self.storage.settings.uses_connection_string:
            kwargs["account_key"] = service.credential.account_key
        else:
            kwargs["user_delegation_key"] = self._delegation_key(now, expiry)
        token = generate_blob_sas(service.account_name, self.container, blob_name,
                                  permission=BlobSasPermissions(read=True), start=now - timedelta(minutes=5),
                                  expiry=expiry, **kwargs)
        return f"{self.storage.blob_account_url}/{self.container}/{quote(blob_name)}?{token}"

    def _delegation_key(self, now: datetime, expiry: datetime):
        with self._lock:
            if self._delegation is None or (self._delegation_expiry or now) < expiry:
                until = now + timedelta(hours=_DELEGATION_HOURS)
                service = self.storage.blob_service
                self._delegation = service.get_user_delegation_key(now - timedelta(minutes=5), until)
                self._delegation_expiry = until
            return self._delegation
