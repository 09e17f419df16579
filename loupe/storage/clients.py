"""Clients for Loupe's own storage account: by connection string (Azurite) or by service URIs
and a managed identity (Azure). Nothing else in the core knows which."""
from __future__ import annotations

import functools
import threading
from urllib.parse import urlsplit

from azure.core.exceptions import ResourceExistsError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient

from loupe.settings import Settings
from loupe.storage.names import ALL_TABLES

# Image checks and trainer downloads run many requests at once; requests' default pool (10)
# would drop connections. One pooled session per process serves every blob client.
POOL_SIZE = 64


@functools.lru_cache(maxsize=1)
def shared_transport() -> RequestsTransport:
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=POOL_SIZE, pool_maxsize=POOL_SIZE)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return RequestsTransport(session=session, session_owner=False)


class Storage:
    """Lazily created, shared service clients (they are thread-safe) plus the account's identity."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._ready = False

    @functools.cached_property
    def credential(self):
        """The app's token credential (managed identity on Azure); None with a connection string."""
        if self.settings.uses_connection_string:
            return None
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential(managed_identity_client_id=self.settings.managed_identity_client_id)

    @functools.cached_property
    def blob_service(self) -> BlobServiceClient:
        if self.settings.uses_connection_string:
            return BlobServiceClient.from_connection_string(
                self.settings.effective_connection_string, transport=shared_transport()
            )
        return BlobServiceClient(self.settings.storage_blob_uri, credential=self.credential,
                                 transport=shared_transport())

    @functools.cached_property
    def table_service(self) -> TableServiceClient:
        if self.settings.uses_connection_string:
            return TableServiceClient.from_connection_string(self.settings.effective_connection_string)
        if not self.settings.storage_table_uri:
            raise ValueError("LOUPE_STORAGE_TABLE_URI must be set together with LOUPE_STORAGE_BLOB_URI")
        return TableServiceClient(self.settings.storage_table_uri, credential=self.credential)

    @property
    def blob_account_url(self) -> str:
        """e.g. https://acct.blob.core.windows.net or http://127.0.0.1:10000/devstoreaccount1"""
        return self.blob_service.url.rstrip("/")

    @property
    def account_name(self) -> str:
        return self.blob_service.account_name

    def owns_url(self, url: str) -> bool:
        """Whether a URL points into this storage account's blob service."""
        own = urlsplit(self.blob_account_url)
        other = urlsplit(url)
        if (other.scheme, other.netloc.lower()) != (own.scheme, own.netloc.lower()):
            return False
        prefix = own.path.rstrip("/")
        return other.path.startswith(prefix + "/") if prefix else True

    def container(self, name: str) -> ContainerClient:
        return self.blob_service.get_container_client(name)

    def table(self, name: str) -> TableClient:
        return self.table_service.get_table_client(name)

    def ensure_resources(self) -> None:
        """Create the containers and tables Loupe uses (idempotent; Bicep also creates them)."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            for container in (self.settings.datasets_container, self.settings.models_container,
                              self.settings.customvision_container):
                try:
                    self.blob_service.create_container(container)
                except ResourceExistsError:
                    pass
            for table in ALL_TABLES:
                try:
                    self.table_service.create_table(table)
                except ResourceExistsError:
                    pass
            self._ready = True
