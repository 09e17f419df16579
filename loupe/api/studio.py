"""Loupe Studio: the browser app under /studio/ (docs/studio.md), served as static files.

The studio holds no secret and talks only to the public APIs with the key its user types in, so its
files are public (the key middleware guards /computervision and /customvision only). Every answer
carries a strict Content-Security-Policy: scripts, styles and API calls come from this origin
only; images also from the blob endpoint that signs ``thumbnailUri`` and ``resizedImageUri``.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

STATIC_DIR = (Path(__file__).resolve().parents[1] / "studio" / "static").resolve()
# only these kinds are served: nothing else in the folder is meant for a browser
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".ico": "image/x-icon"}

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=8)
def content_security_policy(image_origin: str) -> str:
    images = f"'self' blob: data: {image_origin}".strip()
    return ("default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            f"img-src {images}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def _image_origin(request: Request) -> str:
    """The scheme://host:port of the blob endpoint whose SAS links the API hands out."""
    try:
        url = urlsplit(request.app.state.services.storage.blob_account_url)
    except Exception:  # no storage configured: the studio still loads, thumbnails do not
        return ""
    return f"{url.scheme}://{url.netloc}" if url.scheme in ("http", "https") and url.netloc else ""


def security_headers(request: Request) -> dict[str, str]:
    return {"Content-Security-Policy": content_security_policy(_image_origin(request)),
            "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
            # small files that change with each release: revalidate instead of a stale app after an upgrade
            "Cache-Control": "no-cache"}


@router.get("/studio")
async def studio_root() -> Response:
    return RedirectResponse("/studio/", status_code=308)


@router.get("/studio/{path:path}")
async def studio_file(path: str, request: Request) -> Response:
    target = (STATIC_DIR / (path or "index.html")).resolve()
    # resolve() folds ".." and links: anything outside the folder, or of another kind, is not found
    if not target.is_relative_to(STATIC_DIR) or target.suffix not in _TYPES or not target.is_file():
        raise HTTPException(404)
    return FileResponse(target, media_type=_TYPES[target.suffix], headers=security_headers(request))
