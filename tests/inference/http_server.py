"""A real local HTTP(S) server for the safe_fetch tests, with routes that misbehave on purpose."""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8  # any bytes: fetch_url does not decode


@dataclass
class Seen:
    paths: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.seen.paths.append(self.path)
        self.server.seen.hosts.append(self.headers.get("Host", ""))
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        route = url.path
        try:
            if route == "/image":
                self._send(200, IMAGE, {"Content-Type": "image/png"})
            elif route == "/sized":
                self._send(200, b"x" * int(query["n"][0]))
            elif route == "/redirect":
                self._send(int(query.get("status", ["302"])[0]), headers={"Location": query["to"][0]})
            elif route.startswith("/hops/"):
                left = int(route.rsplit("/", 1)[1])
                self._send(301, headers={"Location": f"/hops/{left - 1}" if left > 1 else "/image"})
            elif route == "/no-location":
                self._send(302)
            elif route == "/missing":
                self._send(404, b"not here")
            elif route == "/big-declared":
                # claims 100 MB and sends nothing: must be refused from the header alone
                self._send(200, headers={"Content-Length": str(100 * 1024 * 1024)})
                time.sleep(2)
            elif route == "/big-chunked":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"y" * 16384
                for _ in range(int(query["chunks"][0])):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            elif route == "/big-until-close":
                # HTTP/1.0 style: no length at all, the body ends when the connection closes
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                for _ in range(int(query["chunks"][0])):
                    self.wfile.write(b"z" * 16384)
                self.close_connection = True
            elif route == "/slow-headers":
                time.sleep(float(query["s"][0]))
                self._send(200, IMAGE)
            elif route == "/trickle":
                # one byte every `every` seconds: each read is quick, the whole is not
                every = float(query["every"][0])
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                for _ in range(1000):
                    self.wfile.write(b"t")
                    self.wfile.flush()
                    time.sleep(every)
            else:
                self._send(404)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the client gave up, as it should


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    seen: Seen


class LocalServer:
    """``with LocalServer() as s: s.url("/image")``; ``tls_host`` serves HTTPS for that name."""

    def __init__(self, tls_host: str | None = None) -> None:
        self.tls_host = tls_host
        self.seen = Seen()
        self.cert_pem: bytes | None = None

    def __enter__(self) -> Self:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.seen = self.seen
        if self.tls_host:
            self.cert_pem, context = _tls_context(self.tls_host, self.seen)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls_host else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's self-signed certificate (and nothing else)."""
        assert self.cert_pem is not None
        return ssl.create_default_context(cadata=self.cert_pem.decode())


def _tls_context(host: str, seen: Seen) -> tuple[bytes, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with tempfile.TemporaryDirectory() as folder:
        cert_file, key_file = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        with open(cert_file, "wb") as f:
            f.write(cert_pem)
        with open(key_file, "wb") as f:
            f.write(key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)

    def record_sni(_sock, server_name, _context):
        seen.sni.append(server_name)

    context.sni_callback = record_sni
    return cert_pem, context


def resolver_for(mapping: dict[str, list[str]], calls: list[str] | None = None):
    """A getaddrinfo stand-in: host -> the listed addresses (a DNS answer we control)."""

    def resolve(host, port, family=0, type=0, proto=0, flags=0):
        if calls is not None:
            calls.append(host)
        if host not in mapping:
            raise socket.gaierror(-2, "Name or service not known")
        out = []
        for address in mapping[host]:
            ip = ipaddress.ip_address(address)
            fam = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            sockaddr = (address, port, 0, 0) if ip.version == 6 else (address, port)
            out.append((fam, socket.SOCK_STREAM, 6, "", sockaddr))
        return out

    return resolve
