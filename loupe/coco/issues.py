"""One problem found in a dataset, and a collector that keeps reports short.

A file with a million bad boxes must not produce a million-entry error list: the collector keeps
the first few issues of each code (and a bounded total), counts the rest, and ends each capped
code with one summary line ("... and 1234 more InvalidBoundingBox errors").
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel

# Defaults for how many issues a report lists; totals are always counted in full.
MAX_LISTED = 50
MAX_LISTED_PER_CODE = 10


# A key absent from its JSON object (as opposed to present with null).
MISSING: Any = object()


def quote(text: str, limit: int = 60) -> str:
    """``text`` JSON-quoted (so control characters show escaped), cut after ``limit`` characters."""
    return orjson.dumps(text[:limit]).decode() + ("..." if len(text) > limit else "")


def describe_value(value: Any) -> str:
    """A short description of a JSON value for messages (never a huge or deeply nested repr)."""
    if value is MISSING:
        return "nothing"
    if value is None:
        return "null"
    if value is True or value is False:
        return f"a boolean ({'true' if value else 'false'})"
    if type(value) is int or type(value) is float:
        return repr(value)
    if type(value) is str:
        return f"a string {quote(value)}"
    if type(value) is list:
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if type(value) is dict:
        return "an object"
    return type(value).__name__


class Issue(BaseModel):
    """One error or warning. ``code`` is stable and machine-readable."""

    code: str
    # where: "annotations[17].bbox[2]", "images[3].file_name", "categories"; "" for the whole file
    target: str
    # what is wrong and what is expected
    message: str


class IssueCollector:
    """Counts every issue, keeps the first ``max_per_code`` of each code up to ``max_listed`` in all."""

    __slots__ = ("kind", "max_listed", "max_per_code", "_listed", "_per_code", "total")

    def __init__(
        self, kind: str = "error", *, max_listed: int = MAX_LISTED, max_per_code: int = MAX_LISTED_PER_CODE
    ) -> None:
        self.kind = kind  # "error" or "warning", used in the summary lines
        self.max_listed = max_listed
        self.max_per_code = max_per_code
        self._listed: list[tuple[str, str, str]] = []
        self._per_code: dict[str, int] = {}
        self.total = 0

    def wants(self, code: str) -> bool:
        """Whether an issue of this code would be listed: callers skip formatting messages if not."""
        return self._per_code.get(code, 0) < self.max_per_code and len(self._listed) < self.max_listed

    def add(self, code: str, target: str, message: str) -> None:
        seen = self._per_code.get(code, 0)
        self._per_code[code] = seen + 1
        self.total += 1
        if seen < self.max_per_code and len(self._listed) < self.max_listed:
            self._listed.append((code, target, message))

    def bad_field(self, target: str, value: Any, expected: str) -> None:
        """A field that is missing (``MISSING``), null, or of the wrong type."""
        code = "MissingField" if value is MISSING else "NullField" if value is None else "InvalidType"
        if not self.wants(code):
            self.count(code)
        elif value is MISSING:
            self.add(code, target, f"{target} is missing; expected {expected}")
        elif value is None:
            self.add(code, target, f"{target} is null; expected {expected}")
        else:
            self.add(code, target, f"{target} must be {expected}, found {describe_value(value)}")

    def count(self, code: str, n: int = 1) -> None:
        """Count ``n`` issues of ``code`` without listing them (their details were not kept)."""
        if n > 0:
            self._per_code[code] = self._per_code.get(code, 0) + n
            self.total += n

    def has(self, code: str) -> bool:
        return code in self._per_code

    def issues(self) -> list[Issue]:
        out = [Issue(code=c, target=t, message=m) for c, t, m in self._listed]
        listed: dict[str, int] = {}
        for c, _, _ in self._listed:
            listed[c] = listed.get(c, 0) + 1
        for code, n in self._per_code.items():
            more = n - listed.get(code, 0)
            if more > 0:
                plural = "s" if more > 1 else ""
                out.append(
                    Issue(code=code, target="", message=f"... and {more} more {code} {self.kind}{plural}")
                )
        return out
