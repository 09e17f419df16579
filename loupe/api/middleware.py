"""ASGI middleware that runs before routing: slash collapsing, API-key check, api-version check.

They run before routing so an unknown path under /computervision still answers 401 without a
key, and so `//models/...` (built by the samples EvaluationClient, docs/wire-contract.md#double-slashes) routes.
"""
from __future__ import annotations

import hmac
import re
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from loupe.api.errors import error_response, unauthorized
from loupe.errors import ServiceError

API_PREFIX = "/computervision"
# api-versions the clients send (docs/wire-contract.md#api-versions); model customization answers on all of them.
SUPPORTED_API_VERSIONS = ("2023-02-01-preview", "2023-04-01-preview", "2023-10-01", "2024-02-01")
_SLASHES = re.compile(r"/{2,}")


class CollapseSlashesMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "//" in scope["path"]:
            path = _SLASHES.sub("/", scope["path"])
            scope = dict(scope, path=path, raw_path=path.encode())
        await self.app(scope, receive, send)


class ApiKeyMiddleware:
    """``Ocp-Apim-Subscription-Key`` on every /computervision request, compared in constant time."""

    def __init__(self, app: ASGIApp, keys: list[str]) -> None:
        self.app = app
        self._keys = [key.encode() for key in keys]

    def _valid(self, presented: bytes) -> bool:
        # compare against every key, without an early exit, so timing reveals nothing
        result = False
        for key in self._keys:
            result |= hmac.compare_digest(presented, key)
        return result

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIX):
            presented = b""
            for name, value in scope["headers"]:
                if name == b"ocp-apim-subscription-key":
                    presented = value.strip()
                    break
            if not presented or not self._valid(presented):
                await error_response(unauthorized())(scope, receive, send)
                return
        await self.app(scope, receive, send)


class ApiVersionMiddleware:
    """Every /computervision call carries ``api-version``; unknown versions are refused clearly."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIX):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            versions = query.get("api-version", [])
            error = None
            if not versions or not versions[0]:
                error = ServiceError(
                    400, "MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests. "
                    f"Supported versions: {', '.join(SUPPORTED_API_VERSIONS)}.",
                    target="api-version",
                )
            elif versions[0] not in SUPPORTED_API_VERSIONS:
                error = ServiceError(
                    400, "UnsupportedApiVersionValue",
                    f"Unsupported api-version '{versions[0][:64]}'. Supported versions: "
                    f"{', '.join(SUPPORTED_API_VERSIONS)}.",
                    target="api-version",
                )
            if error is not None:
                await error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)
