"""Errors the core raises for callers to see: each carries the wire code, message and the place
it concerns. The HTTP layer renders them in the envelope of docs/wire-contract.md#error-envelope; the status is a hint
for it (the same errors reach blob/timer functions, which only log them)."""
from __future__ import annotations

import re
from typing import Any


class ServiceError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        details: list[dict[str, Any]] | None = None,
        inner_code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.details = details
        self.inner_code = inner_code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        if self.details:
            error["details"] = self.details
        if self.inner_code:
            error["innererror"] = {"code": self.inner_code, "message": self.message}
        return {"error": error}


def detail(code: str, message: str, target: str | None = None) -> dict[str, Any]:
    item = {"code": code, "message": message}
    if target:
        item["target"] = target
    return item


def bad_request(message: str, *, target: str | None = None, code: str = "InvalidRequest",
                details: list[dict[str, Any]] | None = None, inner_code: str | None = None) -> ServiceError:
    return ServiceError(400, code, message, target=target, details=details, inner_code=inner_code)


def not_found(what: str, name: str) -> ServiceError:
    return ServiceError(404, "NotFound", f"{what} '{name}' was not found.")


def conflict(code: str, message: str) -> ServiceError:
    return ServiceError(409, code, message)


def precondition_failed(message: str) -> ServiceError:
    return ServiceError(412, "PreconditionFailed", message)


# --- user text in messages and names

# How much of a user's input a message repeats (docs/wire-contract.md#limits): enough to recognise
# it, never enough to make an error (or a stored validation) as large as the input.
SHOWN_CHARS = 200

# C0 and C1 controls (DEL included) and the bidirectional embeddings, overrides and isolates,
# which can make a name display as something else ("evil\u202egpj.exe" reads "evilexe.jpg").
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]").search
_FORBIDDEN_NAMES = {0x202A: "LEFT-TO-RIGHT EMBEDDING", 0x202B: "RIGHT-TO-LEFT EMBEDDING",
                    0x202C: "POP DIRECTIONAL FORMATTING", 0x202D: "LEFT-TO-RIGHT OVERRIDE",
                    0x202E: "RIGHT-TO-LEFT OVERRIDE", 0x2066: "LEFT-TO-RIGHT ISOLATE",
                    0x2067: "RIGHT-TO-LEFT ISOLATE", 0x2068: "FIRST STRONG ISOLATE",
                    0x2069: "POP DIRECTIONAL ISOLATE"}


def shown(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` as a message may repeat it: at most ``limit`` characters, then "…"."""
    return text if len(text) <= limit else text[:limit] + "…"


def text_problem(text: str) -> str | None:
    """Why ``text`` may not be a name or label (a control or bidirectional-formatting character), or None."""
    found = _FORBIDDEN(text)
    if found is None:
        return None
    code = ord(found.group())
    kind = _FORBIDDEN_NAMES.get(code, "a control character")
    return (f"contains U+{code:04X} ({kind}) at position {found.start()}; control and bidirectional "
            "formatting characters are not allowed")
