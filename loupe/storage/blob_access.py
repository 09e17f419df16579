"""Reading a user's blobs (annotation files, images) with the dataset's authentication.

Only blob URLs are ever fetched here, and only from storage accounts Loupe may read: its own,
public Azure blob endpoints, and hosts an operator allowed. That keeps dataset URLs from being
used to make Loupe fetch arbitrary addresses (SSRF).
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobClient

from loupe.enums import StorageAuthKind
from loupe.errors import shown
from loupe.storage.clients import Storage, shared_transport

# docs/wire-contract.md#limits: a blob name is at most 1024 characters, percent-encoded up to
# three times that, plus the account and container
MAX_BLOB_URL_LENGTH = 4_096
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\\]").search
AZURE_BLOB_SUFFIXES = (".blob.core.windows.net", ".blob.core.usgovcloudapi.net", ".blob.core.chinacloudapi.cn")
_TIMEOUTS = {"connection_timeout": 10, "read_timeout": 60}


class BlobUrlError(ValueError):
    """A URL Loupe will not read: malformed, not a blob URL, or of a storage account not allowed."""


class ForeignAccountError(BlobUrlError):
    """A well-formed URL of a storage account (or host) Loupe may not read."""


class BlobReadError(Exception):
    def __init__(self, code: str, message: str, size: int | None = None) -> None:
        super().__init__(message)
        self.code = code  # BlobNotFound | BlobAccessDenied | BlobTooLarge | BlobReadFailed
        self.message = message
        self.size = size  # the blob's size, when known (BlobTooLarge)


@dataclass(frozen=True)
class BlobLocation:
    account_url: str  # scheme://host or scheme://host:port/account (path-style, e.g. Azurite)
    container: str
    name: str

    @property
    def url(self) -> str:
        return f"{self.account_url}/{self.container}/{quote(self.name)}"

    @property
    def folder(self) -> str:
        return posixpath.dirname(self.name)

    def sibling(self, relative: str) -> "BlobLocation":
        """The blob at ``relative`` from this blob's folder (relative has been checked for traversal)."""
        joined = posixpath.normpath(posixpath.join(self.folder, relative) if self.folder else relative)
        if joined.startswith(("../", "/")) or joined in ("..", "."):
            raise BlobUrlError(f"'{relative}' leaves the annotation file's folder")
        return BlobLocation(self.account_url, self.container, joined)


def _allowed_account(scheme: str, host: str, path: str, storage: Storage) -> tuple[str, str] | None:
    """(account_url, rest of path) when the URL's account may be read, else None."""
    own = urlsplit(storage.blob_account_url)
    own_prefix = own.path.rstrip("/")
    if (scheme, host) == (own.scheme, own.netloc.lower()) and (
        not own_prefix or path.startswith(own_prefix + "/")
    ):
        return storage.blob_account_url, path[len(own_prefix) :]
    if scheme == "https" and host.endswith(AZURE_BLOB_SUFFIXES):
        return f"https://{host}", path
    for allowed in storage.settings.allowed_storage_hosts:
        allowed_host, _, allowed_path = allowed.lower().partition("/")
        if host != allowed_host:
            continue
        prefix = f"/{allowed_path}" if allowed_path else ""
        if not prefix or path.startswith(prefix + "/"):
            return f"{scheme}://{host}{prefix}", path[len(prefix) :]
    return None


def parse_blob_url(url: str, storage: Storage) -> BlobLocation:
    if not isinstance(url, str) or not url.strip():
        raise BlobUrlError("the URI is empty")
    if len(url) > MAX_BLOB_URL_LENGTH:
        raise BlobUrlError(f"the URI is {len(url)} characters long; at most {MAX_BLOB_URL_LENGTH} are allowed")
    if _UNSAFE(url.strip()):
        raise BlobUrlError(f"'{_shown(url)}' contains a control character or a backslash; "
                           "percent-encode them")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise BlobUrlError(f"'{_shown(url)}' is not an absolute http(s) URI")
    if "@" in parts.netloc:
        raise BlobUrlError("URIs with credentials (user@host) are not accepted")
    if "sig=" in parts.query.lower():
        raise BlobUrlError(
            "the URI carries a SAS token; give the URI without it and the token in authentication.sasToken"
        )
    host = parts.netloc.lower()
    found = _allowed_account(parts.scheme, host, parts.path, storage)
    if found is None:
        raise ForeignAccountError(
            f"'{_shown(url)}' is not a blob in an allowed storage account (Azure Blob Storage URIs like "
            "https://<account>.blob.core.windows.net/<container>/<path>, or hosts in LOUPE_ALLOWED_STORAGE_HOSTS)"
        )
    account_url, rest = found
    container, _, name = rest.lstrip("/").partition("/")
    name = unquote(name)
    if not container or not name or name.endswith("/"):
        raise BlobUrlError(f"'{_shown(url)}' does not name a blob (expected .../<container>/<path to file>)")
    # HTTP stacks resolve '.' and '..' segments before sending: "datasets/../models/x" would read
    # another container than the one checked
    if any(part in (".", "..") for part in f"{container}/{name}".split("/")) or "\\" in name:
        raise BlobUrlError(f"'{_shown(url)}' contains '.' or '..' path segments or a backslash")
    return BlobLocation(account_url, container, name)


def _shown(url: str) -> str:
    """A URL as it may appear in messages: never with its query (it could hold a token), and short."""
    try:
        parts = urlsplit(url)
        text = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.scheme else url.split("?", 1)[0]
    except ValueError:
        text = url.split("?", 1)[0]
    return shown(text)


class BlobReader:
    """Reads blobs of one dataset, authenticating as the dataset says."""

    def __init__(self, storage: Storage, auth_kind: StorageAuthKind | None = None, sas_token: str | None = None):
        self.storage = storage
        self.auth_kind = auth_kind
        self.sas_token = sas_token.lstrip("?") if sas_token else None

    def _client(self, location: BlobLocation) -> BlobClient:
        own = location.account_url == self.storage.blob_account_url
        if self.auth_kind is StorageAuthKind.SAS and self.sas_token:
            credential = self.sas_token
        elif own:
            # Loupe's own account: its own access (account key locally, managed identity on Azure)
            return self.storage.blob_service.get_blob_client(location.container, location.name)
        elif self.auth_kind is StorageAuthKind.MANAGED_IDENTITY:
            credential = self.storage.credential
            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
        else:
            credential = None  # public blob
        return BlobClient(location.account_url, location.container, location.name, credential=credential,
                          transport=shared_transport(), **_TIMEOUTS)

    def read(self, location: BlobLocation, max_bytes: int) -> bytes:
        where = shown(f"{location.container}/{location.name}")
        try:
            downloader = self._client(location).download_blob()
            if downloader.size > max_bytes:
                raise BlobReadError("BlobTooLarge", f"'{where}' is {downloader.size} bytes; the limit is {max_bytes}",
                                    downloader.size)
            return downloader.readall()
        except BlobReadError:
            raise
        except ResourceNotFoundError:
            raise BlobReadError("BlobNotFound", f"'{where}' does not exist") from None
        except ClientAuthenticationError:
            raise BlobReadError("BlobAccessDenied", f"access to '{where}' was denied; check the authentication") from None
        except HttpResponseError as exc:
            if exc.status_code in (401, 403):
                raise BlobReadError("BlobAccessDenied", f"access to '{where}' was denied ({exc.status_code}); "
                                    "check the authentication") from None
            raise BlobReadError("BlobReadFailed", f"reading '{where}' failed with HTTP {exc.status_code}") from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise BlobReadError("BlobReadFailed", f"reading '{where}' failed: {type(exc).__name__}") from None
