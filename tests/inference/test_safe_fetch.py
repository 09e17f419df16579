"""loupe.net.safe_fetch against a real local HTTP(S) server and controlled DNS answers."""

from __future__ import annotations

import socket
import time
import urllib.parse

import pytest

from loupe.inference import InvalidRequest, fetch_image
from loupe.net import UrlFetchError, fetch_url
from loupe.net.safe_fetch import DOWNLOAD_FAILED, INVALID_URL, NOT_ALLOWED, TIMEOUT, TOO_LARGE
from tests.inference.http_server import IMAGE, LocalServer, resolver_for

LOCAL = {"allow_http": True, "allow_loopback": True}
LIMIT = 100_000


def _fetch(url: str, **kwargs) -> bytes:
    kwargs.setdefault("max_bytes", LIMIT)
    kwargs.setdefault("timeout_s", 5)
    return fetch_url(url, **kwargs)


def _code(url: str, **kwargs) -> UrlFetchError:
    with pytest.raises(UrlFetchError) as info:
        _fetch(url, **kwargs)
    return info.value


def _to(server: LocalServer, target: str, status: int = 302) -> str:
    return server.url(f"/redirect?status={status}&to=" + urllib.parse.quote(target, safe=""))


@pytest.fixture(scope="module")
def server():
    with LocalServer() as s:
        yield s


# --- happy paths and pinning -------------------------------------------------------------


def test_fetches_from_a_local_server(server):
    assert _fetch(server.url("/image"), **LOCAL) == IMAGE
    assert server.seen.hosts[-1] == f"127.0.0.1:{server.port}"


def test_connects_to_the_checked_address_once_resolved(server):
    calls: list[str] = []
    answers = {"images.example": ["127.0.0.1"]}
    resolver = resolver_for(answers, calls)
    url = server.url("/image", host="images.example")
    # a rebinding DNS server would answer differently next time; we must not ask again
    body = _fetch(url, resolver=resolver, **LOCAL)
    answers["images.example"] = ["10.0.0.1"]
    assert body == IMAGE
    assert calls == ["images.example"]
    assert server.seen.hosts[-1] == f"images.example:{server.port}"  # Host kept while dialling the IP


def test_https_pins_the_ip_but_keeps_sni_and_certificate_checks():
    with LocalServer(tls_host="images.example") as tls:
        resolver = resolver_for({"images.example": ["127.0.0.1"], "other.example": ["127.0.0.1"]})
        url = tls.url("/image", host="images.example")
        body = _fetch(url, resolver=resolver, allow_loopback=True, ssl_context=tls.client_context())
        assert body == IMAGE
        assert tls.seen.sni[-1] == "images.example"
        assert tls.seen.hosts[-1] == f"images.example:{tls.port}"

        # same IP under another name: the certificate does not match, so no download
        wrong = _code(
            tls.url("/image", host="other.example"),
            resolver=resolver,
            allow_loopback=True,
            ssl_context=tls.client_context(),
        )
        assert wrong.code == DOWNLOAD_FAILED and "TLS" in wrong.message
        # the default trust store does not trust a self-signed certificate
        untrusted = _code(url, resolver=resolver, allow_loopback=True)
        assert untrusted.code == DOWNLOAD_FAILED and "certificate" in untrusted.message.lower()

        # https -> http downgrade by redirect is refused unless http is allowed
        plain = urllib.parse.quote(f"http://images.example:{tls.port}/image", safe="")
        downgrade = tls.url(f"/redirect?to={plain}", host="images.example")
        refused = _code(downgrade, resolver=resolver, allow_loopback=True, ssl_context=tls.client_context())
        assert refused.code == INVALID_URL and "must use https" in refused.message


def test_redirects_are_followed_and_counted(server):
    assert _fetch(_to(server, server.url("/image")), **LOCAL) == IMAGE
    assert _fetch(_to(server, "/image", status=307), **LOCAL) == IMAGE  # relative Location
    assert _fetch(server.url("/hops/3"), max_redirects=3, **LOCAL) == IMAGE
    too_many = _code(server.url("/hops/4"), max_redirects=3, **LOCAL)
    assert too_many.code == DOWNLOAD_FAILED and "more than 3" in too_many.message
    missing = _code(server.url("/no-location"), **LOCAL)
    assert missing.code == DOWNLOAD_FAILED and "Location" in missing.message


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.azure.internal/metadata/instance",
        "http://private.example/",  # a name that resolves inwards
    ],
)
def test_redirect_to_a_forbidden_address_is_refused(server, target):
    resolver = resolver_for({"private.example": ["192.168.0.10"]})
    before = len(server.seen.paths)
    error = _code(_to(server, target), resolver=resolver, **LOCAL)
    assert error.code == NOT_ALLOWED and "redirect target" in error.message
    new_requests = server.seen.paths[before:]
    assert len(new_requests) == 1 and new_requests[0].startswith("/redirect")


# --- size and time limits ----------------------------------------------------------------


def test_body_at_the_limit_passes_and_one_byte_more_does_not(server):
    assert len(_fetch(server.url(f"/sized?n={LIMIT}"), **LOCAL)) == LIMIT
    error = _code(server.url(f"/sized?n={LIMIT + 1}"), **LOCAL)
    assert error.code == TOO_LARGE and f"{LIMIT + 1} bytes" in error.message  # from Content-Length


def test_declared_length_is_refused_before_reading(server):
    start = time.monotonic()
    error = _code(server.url("/big-declared"), **LOCAL)
    assert error.code == TOO_LARGE and str(100 * 1024 * 1024) in error.message
    assert time.monotonic() - start < 1.5  # did not wait for the (never sent) body


@pytest.mark.parametrize("route", ["/big-chunked?chunks=50", "/big-until-close?chunks=50"])
def test_bodies_without_length_are_cut_at_the_limit(server, route):
    error = _code(server.url(route), **LOCAL)
    assert error.code == TOO_LARGE and "larger than the limit" in error.message
    # the same routes within the limit arrive whole
    small = route.replace("chunks=50", "chunks=2")
    assert len(_fetch(server.url(small), **LOCAL)) == 2 * 16384


def test_slow_headers_time_out(server):
    start = time.monotonic()
    error = _code(server.url("/slow-headers?s=3"), timeout_s=0.5, **LOCAL)
    assert error.code == TIMEOUT
    assert time.monotonic() - start < 1.5


def test_a_trickling_body_hits_the_overall_deadline(server):
    # every byte arrives well within any per-read timeout; only an overall deadline stops it
    start = time.monotonic()
    error = _code(server.url("/trickle?every=0.05"), timeout_s=0.6, **LOCAL)
    assert error.code == TIMEOUT
    assert time.monotonic() - start < 1.2


def test_slow_dns_times_out():
    def slow_resolver(*args, **kwargs):
        time.sleep(2)
        return []

    start = time.monotonic()
    error = _code("https://images.example.com/a.jpg", timeout_s=0.3, resolver=slow_resolver)
    assert error.code == TIMEOUT and time.monotonic() - start < 1.0


def test_http_errors_and_unreachable_hosts(server):
    error = _code(server.url("/missing"), **LOCAL)
    assert error.code == DOWNLOAD_FAILED and "HTTP 404" in error.message
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    error = _code(f"http://127.0.0.1:{closed_port}/image", **LOCAL)
    assert error.code == DOWNLOAD_FAILED and "cannot connect" in error.message
    error = _code("https://unknown.example/a.jpg", resolver=resolver_for({}))
    assert error.code == DOWNLOAD_FAILED and "cannot be resolved" in error.message


# --- policy with the default settings (https only, no loopback) --------------------------

FORBIDDEN_ANSWERS = [
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "127.0.0.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",
    "ff02::1",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:a00:1::",  # 6to4 of 10.0.0.1
]


@pytest.mark.parametrize("answer", FORBIDDEN_ANSWERS)
def test_resolved_forbidden_addresses_are_refused(answer):
    resolver = resolver_for({"images.example.com": [answer]})
    error = _code("https://images.example.com/cat.jpg", resolver=resolver)
    assert error.code == NOT_ALLOWED and "resolves to" in error.message


def test_one_forbidden_answer_among_public_ones_refuses_the_name():
    resolver = resolver_for({"images.example.com": ["93.184.216.34", "10.0.0.1"]})
    assert _code("https://images.example.com/cat.jpg", resolver=resolver).code == NOT_ALLOWED


def test_allow_loopback_still_refuses_link_local_private_and_metadata():
    for answer in ("169.254.169.254", "10.0.0.1", "::ffff:169.254.169.254", "fe80::1", "100.64.0.1"):
        resolver = resolver_for({"images.example.com": [answer]})
        error = _code("http://images.example.com/cat.jpg", resolver=resolver, **LOCAL)
        assert error.code == NOT_ALLOWED, answer
    assert _code("http://169.254.169.254/latest/meta-data/", **LOCAL).code == NOT_ALLOWED
    assert _code("http://metadata.azure.internal/metadata/instance", **LOCAL).code == NOT_ALLOWED


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("", INVALID_URL),
        ("not a url", INVALID_URL),
        ("http://example.com/cat.jpg", INVALID_URL),  # http is off by default
        ("ftp://example.com/cat.jpg", INVALID_URL),
        ("file:///etc/passwd", INVALID_URL),
        ("https://user:secret@example.com/cat.jpg", INVALID_URL),
        ("https://example.com@169.254.169.254/", INVALID_URL),
        ("https://example.com\\@10.0.0.1/", INVALID_URL),
        ("https://example.com:99999/cat.jpg", INVALID_URL),
        ("https://example.com:0/cat.jpg", INVALID_URL),
        ("https://[::1/cat.jpg", INVALID_URL),
        ("https://exa mple.com/cat.jpg", INVALID_URL),
        ("https:///cat.jpg", INVALID_URL),
        ("https://169.254.169.254/latest/meta-data/", NOT_ALLOWED),
        ("https://[::1]/cat.jpg", NOT_ALLOWED),
        ("https://[::ffff:127.0.0.1]/cat.jpg", NOT_ALLOWED),
        ("https://[fe80::1%25eth0]/cat.jpg", NOT_ALLOWED),
        ("https://127.0.0.1/cat.jpg", NOT_ALLOWED),
        ("https://localhost/cat.jpg", NOT_ALLOWED),
        ("https://images.localhost/cat.jpg", NOT_ALLOWED),
        ("https://metadata.azure.internal/metadata/instance", NOT_ALLOWED),
        ("https://METADATA.AZURE.INTERNAL./metadata/instance", NOT_ALLOWED),
        ("https://metadata.google.internal/", NOT_ALLOWED),
        ("https://metadata/", NOT_ALLOWED),
        ("https://2130706433/", NOT_ALLOWED),  # 127.0.0.1 as one decimal number
    ],
)
def test_urls_refused_before_any_dns(url, code):
    calls: list[str] = []
    resolver = resolver_for({}, calls)
    assert _code(url, resolver=resolver).code == code
    assert calls == []  # refused from the URL alone


def test_fetch_image_maps_to_invalid_request(server):
    with pytest.raises(InvalidRequest) as info:
        fetch_image("https://169.254.169.254/latest/meta-data/")
    assert (info.value.status, info.value.code, info.value.inner_code) == (400, "InvalidRequest", NOT_ALLOWED)
    with pytest.raises(InvalidRequest) as info:
        fetch_image(server.url("/big-declared"), **LOCAL)
    assert info.value.inner_code == "InvalidImageSize"  # as for an oversized body sent directly
    assert fetch_image(server.url("/image"), **LOCAL) == IMAGE
