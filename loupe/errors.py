"""Errors the core raises for callers to see: each carries the wire code, message and the place
it concerns. The HTTP layer renders them in the envelope of docs/wire-contract.md#error-envelope; the status is a hint
for it (the same errors reach blob/timer functions, which only log them)."""
from __future__ import annotations

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
