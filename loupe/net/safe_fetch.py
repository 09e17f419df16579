"""Download a user-supplied URL (analyze's ``{"url": ...}``) without becoming an SSRF proxy.

Every hop (the URL and each redirect target) is parsed once, its host name checked, resolved
once, and every resolved address checked (loupe.net.addresses). The connection then goes to
the checked IP itself, so a second DNS answer (DNS rebinding) can never change where we connect:
urllib3's connection pool is opened on the IP, while the request carries ``Host: <name>`` and TLS
uses ``server_hostname=<name>`` for SNI and ``assert_hostname=<name>`` for certificate
verification, exactly as if the name had been dialled. Redirects are followed by hand (at most
``max_redirects``), so each target goes through the same checks. No proxy settings from the
environment are used (an egress proxy would do its own resolution).

The body is streamed under a byte limit (Content-Length is checked first, then the bytes that
actually arrive) and the whole fetch, DNS included, under one deadline: each socket read waits
at most for the time that is left, so a server trickling bytes cannot stretch it.
"""

from __future__ import annotations

import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.exceptions import HTTPError as Urllib3Error

try:
    import certifi  # the CA bundle requests uses; without it urllib3 takes the system store
except ImportError:  # pragma: no cover
    certifi = None

from loupe.net.addresses import IPAddress, address_refusal, host_name_refusal, parse_ip

# Stable codes, usable as the inner error code of an InvalidRequest (docs/wire-contract.md#analyze-errors).
INVALID_URL = "InvalidImageUrl"
NOT_ALLOWED = "ImageUrlNotAllowed"
DOWNLOAD_FAILED = "ImageDownloadFailed"
TOO_LARGE = "ImageTooLarge"
TIMEOUT = "ImageDownloadTimeout"

MAX_URL_LENGTH = 4096
DEFAULT_MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
_USER_AGENT = "Loupe-ImageFetch/1.0"

Resolver = Callable[..., Sequence[tuple[Any, ...]]]

# getaddrinfo has no timeout of its own; it runs here so the fetch deadline still holds.
_dns_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="loupe-dns")


class UrlFetchError(Exception):
    """A URL that could not or may not be fetched; ``code`` is one of the constants above."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # lower case, IDNA-encoded, no brackets
    port: int
    request_target: str  # path + query, as sent
    host_header: str
    ip_literal: IPAddress | None
    what: str  # "the image URL" or "the redirect target '...'", for messages

    def describe(self) -> str:
        return f"{self.scheme}://{self.host_header}"


def _parse(url: str, *, allow_http: bool, allow_loopback: bool, what: str = "the image URL") -> _Target:
    if not isinstance(url, str) or not url:
        raise UrlFetchError(INVALID_URL, f"{what} is empty")
    if len(url) > MAX_URL_LENGTH:
        raise UrlFetchError(INVALID_URL, f"{what} is longer than {MAX_URL_LENGTH} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url) or "\\" in url:
        raise UrlFetchError(INVALID_URL, f"{what} contains spaces, control characters or backslashes")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (validates the port and IPv6 brackets)
    except ValueError as exc:
        raise UrlFetchError(INVALID_URL, f"{what} is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if allow_http else ("https",)
    if scheme not in allowed:
        raise UrlFetchError(
            INVALID_URL, f"{what} must use {' or '.join(allowed)}; got '{parts.scheme or '(none)'}'"
        )
    if "@" in parts.netloc:
        raise UrlFetchError(INVALID_URL, f"{what} must not contain credentials (user:password@)")
    port = parts.port if parts.port is not None else (443 if scheme == "https" else 80)
    if port == 0:
        raise UrlFetchError(INVALID_URL, f"{what} has port 0")
    raw_host = (parts.hostname or "").rstrip(".")
    if not raw_host:
        raise UrlFetchError(INVALID_URL, f"{what} has no host")
    ip = parse_ip(raw_host)
    if ip is not None:
        host = str(ip)
        refusal = address_refusal(ip, allow_loopback=allow_loopback)
    else:
        try:
            host = raw_host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise UrlFetchError(INVALID_URL, f"{what} host '{raw_host}' is not a valid name") from None
        refusal = host_name_refusal(host, allow_loopback=allow_loopback)
    if refusal:
        raise UrlFetchError(NOT_ALLOWED, f"{what} host '{raw_host}' is not allowed: {refusal}")
    # http.client refuses non-ASCII request targets; percent-encode them, keep everything else.
    path = urllib.parse.quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    query = urllib.parse.quote(parts.query, safe="/?%:@!$&'()*+,;=-._~")
    request_target = f"{path}?{query}" if query else path
    bracketed = f"[{host}]" if ":" in host else host
    default_port = 443 if scheme == "https" else 80
    host_header = bracketed if port == default_port else f"{bracketed}:{port}"
    return _Target(scheme, host, port, request_target, host_header, ip, what)


def _remaining(deadline: float, what: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise UrlFetchError(TIMEOUT, f"the image download timed out ({what})")
    return left


def _resolve(target: _Target, resolver: Resolver, deadline: float, allow_loopback: bool) -> list[IPAddress]:
    """Every address the name resolves to, all checked; refuses if any one is not allowed."""
    if target.ip_literal is not None:
        return [target.ip_literal]
    future = _dns_pool.submit(resolver, target.host, target.port, 0, socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=_remaining(deadline, "resolving the host name"))
    except FutureTimeout:
        raise UrlFetchError(TIMEOUT, f"resolving '{target.host}' timed out") from None
    except (OSError, UnicodeError) as exc:
        raise UrlFetchError(
            DOWNLOAD_FAILED, f"{target.what} host '{target.host}' cannot be resolved: {exc}"
        ) from None
    addresses: list[IPAddress] = []
    for family, *_rest, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = parse_ip(str(sockaddr[0]).split("%", 1)[0])
        if ip is None:
            continue
        refusal = address_refusal(ip, allow_loopback=allow_loopback)
        if refusal:
            # a name that also points inwards is refused outright, not just that address
            raise UrlFetchError(
                NOT_ALLOWED, f"{target.what} host '{target.host}' resolves to {ip}, {refusal}"
            )
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise UrlFetchError(DOWNLOAD_FAILED, f"{target.what} host '{target.host}' has no IP address")
    return addresses


def _pool(target: _Target, ip: IPAddress, ssl_context: ssl.SSLContext | None) -> urllib3.HTTPConnectionPool:
    common: dict[str, Any] = {"maxsize": 1, "retries": False}
    if target.scheme == "http":
        return urllib3.HTTPConnectionPool(str(ip), target.port, **common)
    tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED"}
    if ssl_context is not None:
        tls["ssl_context"] = ssl_context
    else:
        if certifi is not None:
            tls["ca_certs"] = certifi.where()
    if target.ip_literal is None:
        # connect to the pinned IP, but speak TLS to (and verify the certificate of) the name
        tls["server_hostname"] = target.host
        tls["assert_hostname"] = target.host
    return urllib3.HTTPSConnectionPool(str(ip), target.port, **common, **tls)


def _open(
    target: _Target, addresses: list[IPAddress], deadline: float, ssl_context: ssl.SSLContext | None
) -> tuple[urllib3.HTTPConnectionPool, urllib3.BaseHTTPResponse]:
    headers = {
        "Host": target.host_header,
        "User-Agent": _USER_AGENT,
        "Accept": "image/*,*/*;q=0.8",
        # a compressed body would bypass the size limit's intent and an image gains nothing
        "Accept-Encoding": "identity",
    }
    last_error: Exception | None = None
    for ip in addresses:
        left = _remaining(deadline, "connecting")
        pool = _pool(target, ip, ssl_context)
        try:
            response = pool.urlopen(
                "GET",
                target.request_target,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
                timeout=urllib3.Timeout(connect=left, read=left),
                assert_same_host=False,
            )
            return pool, response
        except (ConnectTimeoutError, NewConnectionError) as exc:
            pool.close()
            last_error = exc  # try the next address of the name
        except BaseException:
            pool.close()
            raise
    # NewConnectionError subclasses ConnectTimeoutError in urllib3: refused is not a timeout
    if isinstance(last_error, ConnectTimeoutError) and not isinstance(last_error, NewConnectionError):
        raise UrlFetchError(TIMEOUT, f"connecting to {target.describe()} timed out")
    raise UrlFetchError(DOWNLOAD_FAILED, f"cannot connect to {target.describe()}: {last_error}")


def _set_read_timeout(response: urllib3.BaseHTTPResponse, seconds: float) -> None:
    sock = getattr(getattr(response, "connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(seconds)


def _read_body(response: urllib3.BaseHTTPResponse, max_bytes: int, deadline: float, where: str) -> bytes:
    length = response.headers.get("Content-Length")
    if length is not None and length.strip().isdigit() and int(length) > max_bytes:
        raise UrlFetchError(
            TOO_LARGE, f"the image at {where} is {int(length)} bytes; the limit is {max_bytes} bytes"
        )
    body = bytearray()
    while True:
        _set_read_timeout(response, _remaining(deadline, "reading the body"))
        chunk = response.read1(_CHUNK)
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > max_bytes:
            raise UrlFetchError(
                TOO_LARGE, f"the image at {where} is larger than the limit of {max_bytes} bytes"
            )


def fetch_url(
    url: str,
    *,
    max_bytes: int,
    timeout_s: float,
    allow_http: bool = False,
    allow_loopback: bool = False,
    resolver: Resolver = socket.getaddrinfo,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    ssl_context: ssl.SSLContext | None = None,
) -> bytes:
    """The body of ``url`` (status 200), or UrlFetchError with a stable ``code``.

    ``allow_http`` also permits plain-http URLs and redirects; ``allow_loopback`` permits
    127.0.0.0/8, ::1 and localhost (local development and tests only; private, link-local and
    metadata addresses stay refused). ``resolver`` has socket.getaddrinfo's signature.
    ``ssl_context`` replaces the default trust store (certifi), e.g. for a private CA.
    """
    deadline = time.monotonic() + timeout_s
    current = url
    for hop in range(max_redirects + 1):
        what = "the image URL" if hop == 0 else f"the redirect target {current[:200]!r}"
        target = _parse(current, allow_http=allow_http, allow_loopback=allow_loopback, what=what)
        addresses = _resolve(target, resolver, deadline, allow_loopback)
        where = target.describe()
        try:
            pool, response = _open(target, addresses, deadline, ssl_context)
            try:
                if response.status in _REDIRECTS:
                    location = response.headers.get("Location")
                    if not location:
                        raise UrlFetchError(
                            DOWNLOAD_FAILED, f"{where} answered {response.status} without a Location"
                        )
                    current = urllib.parse.urljoin(current, location)
                    continue
                if response.status != 200:
                    raise UrlFetchError(
                        DOWNLOAD_FAILED, f"{where} answered HTTP {response.status} for the image URL"
                    )
                return _read_body(response, max_bytes, deadline, where)
            finally:
                response.close()
                pool.close()
        except UrlFetchError:
            raise
        except (ReadTimeoutError, TimeoutError):
            raise UrlFetchError(
                TIMEOUT, f"the download from {where} took longer than {timeout_s:g} s"
            ) from None
        except SSLError as exc:
            raise UrlFetchError(DOWNLOAD_FAILED, f"the TLS connection to {where} failed: {exc}") from None
        except (Urllib3Error, OSError) as exc:
            raise UrlFetchError(DOWNLOAD_FAILED, f"the download from {where} failed: {exc}") from None
    raise UrlFetchError(DOWNLOAD_FAILED, f"the image URL redirected more than {max_redirects} times")
