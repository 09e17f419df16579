"""A fake azure-core transport for the Batch wire tests: the real BatchClient and its pipeline
(auth, retry, error policies, serialisation) run; only the socket is replaced by canned answers."""
from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from azure.batch import BatchClient
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest, HttpResponse

ACCOUNT_URL = "https://loupebatch.westeurope.batch.azure.com"
BATCH_SCOPE = "https://batch.core.windows.net//.default"
TOKEN = "fake-entra-token"
# realistic deployment values (see infra/): the node identity, the Function identity, a user SAS
NODE_IDENTITY = ("/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg-loupe-prod"
                 "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-loupe-batch-nodes")
NODE_CLIENT_ID = "7d3c9a52-1f5e-4b8a-9c61-3e2f0d4b8a17"
FUNCTION_CLIENT_ID = "c2a81f04-93d7-4e1b-8f25-6a0b7c3d9e48"
USER_SAS = "sv=2025-05-05&ss=b&srt=co&sp=rl&se=2027-01-01T00:00:00Z&sig=Zm9vYmFyYmF6cXV4c2VjcmV0%3D"
REQUEST_ID = "5b8a7f0e-6c1d-4c36-9a1e-2f4b7d1e9c00"
ODATA_ERROR = f"{ACCOUNT_URL}/$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element"


def batch_error(code: str, message: str) -> dict[str, Any]:
    """An error body as the Batch service sends it."""
    return {
        "odata.metadata": ODATA_ERROR,
        "code": code,
        "message": {
            "lang": "en-US",
            "value": f"{message}\nRequestId:{REQUEST_ID}\nTime:2026-11-20T10:15:02.1234567Z",
        },
    }


class CannedResponse(HttpResponse):
    """A complete, already-read azure-core REST response."""

    def __init__(self, request: HttpRequest, status_code: int, body: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        self._request = request
        self._status_code = status_code
        self._content = b"" if body is None else json.dumps(body).encode()
        self._headers: dict[str, str] = {
            "request-id": REQUEST_ID,
            "client-request-id": request.headers.get("client-request-id", ""),
        }
        if body is not None:
            self._headers["Content-Type"] = "application/json;odata=minimalmetadata"
        self._headers.update(headers or {})

    @property
    def request(self) -> HttpRequest:
        return self._request

    @property
    def status_code(self) -> int:
        return self._status_code

    @property
    def headers(self) -> MutableMapping[str, str]:
        return self._headers

    @property
    def reason(self) -> str:
        return {200: "OK", 201: "Created", 202: "Accepted", 403: "Forbidden", 404: "Not Found",
                409: "Conflict", 503: "Service Unavailable"}.get(self._status_code, "Status")

    @property
    def content_type(self) -> str | None:
        return self._headers.get("Content-Type")

    @property
    def is_closed(self) -> bool:
        return True

    @property
    def is_stream_consumed(self) -> bool:
        return True

    @property
    def encoding(self) -> str | None:
        return "utf-8"

    @encoding.setter
    def encoding(self, value: str | None) -> None:  # pragma: no cover - required by the ABC
        pass

    @property
    def url(self) -> str:
        return self._request.url

    @property
    def content(self) -> bytes:
        return self._content

    def text(self, encoding: str | None = None) -> str:
        return self._content.decode(encoding or "utf-8")

    def json(self) -> Any:
        return json.loads(self._content)

    def raise_for_status(self) -> None:
        pass

    def __enter__(self) -> "CannedResponse":
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def read(self) -> bytes:
        return self._content

    def iter_raw(self, **kwargs: Any) -> Iterator[bytes]:
        yield self._content

    def iter_bytes(self, **kwargs: Any) -> Iterator[bytes]:
        yield self._content


@dataclass
class Sent:
    """One request as it left the pipeline."""

    method: str
    url: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or None

    @property
    def raw(self) -> str:
        return f"{self.method} {self.url}\n{json.dumps(self.body)}"


@dataclass
class FakeBatchTransport(HttpTransport):
    """Answers each request with the next canned (status, body[, headers]) and records it;
    an answer ``(exception,)`` raises it instead, as a failed connection would."""

    answers: list[tuple] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)

    def send(self, request: HttpRequest, **kwargs: Any) -> CannedResponse:  # type: ignore[override]
        parts = urlsplit(request.url)
        content = request.content
        body = json.loads(content) if content else None
        self.sent.append(Sent(request.method, request.url, parts.path, parse_qs(parts.query),
                              {k.lower(): v for k, v in request.headers.items()}, body))
        if not self.answers:
            raise AssertionError(f"unexpected request: {request.method} {request.url}")
        answer = self.answers.pop(0)
        if isinstance(answer[0], BaseException):
            raise answer[0]
        status, answer_body, *rest = answer
        return CannedResponse(request, status, answer_body, rest[0] if rest else None)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "FakeBatchTransport":
        return self

    def __exit__(self, *args: Any) -> None:
        pass


class StaticCredential:
    """A TokenCredential that hands out one fixed token and records the scopes asked for."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(TOKEN, 4_102_444_800)  # 2100-01-01


def batch_client(transport: FakeBatchTransport, credential: StaticCredential) -> BatchClient:
    # no back-off sleeps in tests; the retry policy itself stays the real one
    return BatchClient(ACCOUNT_URL, credential, transport=transport, retry_backoff_factor=0)
