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
# Custom Vision's Training and Prediction APIs (docs/customvision.md#wire)
CUSTOM_VISION_PREFIX = "/customvision/"
# the key headers Custom Vision callers send (SDK: Training-Key / Prediction-Key; curl quickstarts
# write Training-key; Azure also took the APIM header); header names arrive lower-cased
CUSTOM_VISION_KEY_HEADERS = (b"training-key", b"prediction-key", b"ocp-apim-subscription-key")
_CV_PATH = re.compile(r"^/customvision/([^/]+)/([^/]+)(/.*)?$", re.IGNORECASE)
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


class CustomVisionPathMiddleware:
    """``/customvision/V3.3/Training/...`` routes as ``/customvision/v3.3/training/...``: the public curl
    quickstarts capitalise the segment, so the version and the segment match case-insensitively."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"][:14].lower() == CUSTOM_VISION_PREFIX:
            match = _CV_PATH.match(scope["path"])
            if match:
                path = f"/customvision/{match[1].lower()}/{match[2].lower()}{match[3] or ''}"
                scope = dict(scope, path=path, raw_path=path.encode())
        await self.app(scope, receive, send)


class ApiKeyMiddleware:
    """A key on every /computervision and /customvision request, compared in constant time:
    ``Ocp-Apim-Subscription-Key``, and for Custom Vision also ``Training-Key`` or ``Prediction-Key``."""

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
        path = scope.get("path", "") if scope["type"] == "http" else ""
        custom_vision = path.startswith(CUSTOM_VISION_PREFIX)
        if path.startswith(API_PREFIX) or custom_vision:
            names = CUSTOM_VISION_KEY_HEADERS if custom_vision else (b"ocp-apim-subscription-key",)
            presented = b""
            for name, value in scope["headers"]:
                if name in names and value.strip():
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
