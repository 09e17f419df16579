"""Where an image is: a safe relative ``file_name`` and/or an allowed http(s) ``absolute_url`` /
``coco_url``. Nothing here fetches; it decides what a fetcher may be asked for.

A relative name is resolved against the COCO file's folder, so it must not climb out of it
(``..``), start at the root, or smuggle a URL, drive letter, backslash or control character in.
A URL must be plain http(s) without credentials, on an origin the caller's policy allows (the
policy is asked once per scheme://host:port).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from loupe.coco.issues import IssueCollector, describe_value, quote
from loupe.coco.quotas import MAX_URL_LENGTH

# Azure blob names are at most 1024 characters.
MAX_FILE_NAME_LENGTH = 1024

# Fast path for the usual file name: relative, '/'-separated ASCII segments that do not start with
# a dot. Anything else goes through file_name_problem for a precise verdict (non-ASCII names,
# ".hidden" files and a colon after the first segment, e.g. "shots/12:30.jpg", are fine).
_SEGMENT = r"[A-Za-z0-9_\-][A-Za-z0-9_\-. ()+,=@~]*"
plain_file_name = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*").fullmatch
# The usual image URL: scheme, plain host, optional port (group 3; the origin ends there), then a
# path without spaces, controls or backslashes. Anything else (upper-case schemes, user info,
# international hosts) goes through urllib's parser, several times slower.
plain_url = re.compile(
    r"(https?)://([A-Za-z0-9.\-]+)((?::[0-9]{1,5})?)(?:[/?#][^\x00-\x20\x7f\\]*)?"
).fullmatch
_CONTROL = re.compile(r"[\x00-\x1f\x7f]").search
_SCHEME_OR_DRIVE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:").match
_EXPECTED_URL = "an http(s) URL such as https://<account>.blob.core.windows.net/<container>/<path>"


def file_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be used as a relative path under the COCO file's folder, or None."""
    if type(name) is not str:
        return f"must be a string, found {describe_value(name)}"
    if not name:
        return "must not be empty"
    if len(name) > MAX_FILE_NAME_LENGTH:
        return f"must be at most {MAX_FILE_NAME_LENGTH} characters, found {len(name)}"
    if _CONTROL(name):
        return "must not contain control characters (such as NUL or newlines)"
    if "\\" in name:
        return "must use '/' between folders, not backslashes"
    if name.startswith("/"):
        return "must be a path relative to the COCO file's folder, not an absolute path"
    if _SCHEME_OR_DRIVE(name):
        return (
            "must be a path relative to the COCO file's folder, not a URL or drive letter; "
            "put URLs in absolute_url or coco_url"
        )
    for part in name.split("/"):
        if part in ("", ".", ".."):
            return "must not contain '.', '..' or empty path segments"
    return None


class LocationChecker:
    """Checks image locations of one file, reporting into ``errors``.

    ``allowed_origins`` caches the policy's verdict per origin; the hot loop in structure.py reads
    it directly for plain URLs, keyed like ``url[: plain_url(url).end(3)]``. A policy that judges
    more finely than by origin (Loupe's own account: by container) has a ``scope(url)`` method
    giving the key its verdict holds for, and may have ``why(url)``: the reason for a refusal
    other than "host not allowed".
    """

    def __init__(self, errors: IssueCollector, url_allowed: Callable[[str], bool] | None) -> None:
        self.errors = errors
        self.url_allowed = url_allowed
        self.allowed_origins: dict[str, bool] = {}
        self.scope: Callable[[str], str] | None = getattr(url_allowed, "scope", None)
        self.why: Callable[[str], str | None] | None = getattr(url_allowed, "why", None)
        self.reasons: dict[str, str | None] = {}

    def file_name_ok(self, name: Any, index: int) -> bool:
        problem = file_name_problem(name)
        if problem is None:
            return True
        target = f"images[{index}].file_name"
        if type(name) is not str:
            self.errors.bad_field(target, name, 'a relative path such as "images/cat.jpg"')
        else:
            self.errors.add("InvalidFileName", target, f"{target} {quote(name)} {problem}")
        return False

    def image_url(self, image: dict[str, Any], index: int) -> str | None:
        """The URL to fetch the image from (absolute_url first), or None if a given URL is unusable."""
        chosen = None
        for key in ("absolute_url", "coco_url"):
            value = image.get(key)
            if value is None:  # absent and null alike: the fields are optional
                continue
            if not self.url_ok(value, f"images[{index}].{key}"):
                return None
            chosen = chosen or value
        return chosen

    def url_ok(self, value: Any, target: str) -> bool:
        if type(value) is not str:
            self.errors.add(
                "InvalidType",
                target,
                f"{target} must be an http(s) URL string, found {describe_value(value)}",
            )
            return False
        if len(value) > MAX_URL_LENGTH:
            self.errors.add(
                "InvalidUrl",
                target,
                f"{target} is {len(value)} characters long; at most {MAX_URL_LENGTH} are allowed "
                f"(found {quote(value)})",
            )
            return False
        m = plain_url(value)
        if m is not None and not (m[3] and int(m[3][1:]) > 65535):
            origin, host = value[: m.end(3)], m[2]
        else:
            origin, host = self._parsed_origin(value, target)
            if origin is None:
                return False
        key = origin if self.scope is None else self.scope(value)
        allowed = self.allowed_origins.get(key)
        if allowed is None:
            allowed, self.reasons[key] = self._judge(value)
            self.allowed_origins[key] = allowed
        reason = self.reasons.get(key)
        if reason:
            self.errors.add("ImageUrlNotAllowed", target, f"{target}: {reason}")
        elif not allowed:
            self.errors.add(
                "ForeignImageHost",
                target,
                f"{target} points at host {quote(host)}, which is not an allowed image host; Loupe fetches "
                "images only from its storage account and the configured hosts (LOUPE_ALLOWED_STORAGE_HOSTS)",
            )
        return allowed

    def _judge(self, url: str) -> tuple[bool, str | None]:
        """The policy's verdict on ``url``, and its reason for a refusal when it gives one."""
        try:
            if self.url_allowed is None or self.url_allowed(url):
                return True, None
            return False, self.why(url) if self.why is not None else None
        except Exception:  # a policy that fails refuses
            return False, None

    def _parsed_origin(self, value: str, target: str) -> tuple[str | None, str]:
        """Checks a URL the fast pattern did not take; (origin, host), or (None, "") after an error."""
        try:
            parts = urlsplit(value)
            host, port = parts.hostname, parts.port
        except ValueError:
            parts, host, port = None, None, None
        if (
            parts is None
            or parts.scheme.lower() not in ("http", "https")
            or not host
            or _CONTROL(value)
            or " " in value
            or "\\" in value
        ):
            self.errors.add(
                "InvalidUrl", target, f"{target} must be {_EXPECTED_URL}, found {describe_value(value)}"
            )
            return None, ""
        if parts.username is not None or parts.password is not None:
            self.errors.add(
                "InvalidUrl",
                target,
                f"{target} must not carry credentials (user:password@host); "
                "use a SAS token or managed identity",
            )
            return None, ""
        return f"{parts.scheme}://{host}:{port or ''}".lower(), host
