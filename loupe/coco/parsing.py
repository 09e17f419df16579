"""Turning the bytes of an annotation file into JSON values, or into one precise issue.

orjson parses (several times faster than the stdlib and without its recursion limits: a
document nested deeper than JSON_MAX_DEPTH is refused, not a crash). Failures are reported with
line and column, and the usual mistakes get their own codes: empty file, UTF-16, Latin-1 bytes,
NaN/Infinity written by Python's json module.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from loupe.coco.issues import IssueCollector

# Largest annotation file accepted: well above a quota-sized detection file (~110-140 MB).
MAX_COCO_BYTES = 512 * 1024 * 1024
# orjson refuses documents nested deeper than this (a COCO file needs 4 levels).
JSON_MAX_DEPTH = 1024
# Parsed JSON takes about 70 bytes of Python objects per value, hostile shapes included (millions
# of "[]" or "0.5"), so a small file can claim a lot of memory. A quota-sized detection file has
# about 10M values (commas and opening brackets); twice that is allowed, ~1.5 GB at worst.
MAX_JSON_VALUES = 20_000_000

_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def parse_json(
    data: bytes | bytearray | memoryview, max_bytes: int, errors: IssueCollector
) -> tuple[bool, Any]:
    """(True, value) or (False, None) after adding one file-level issue to ``errors``."""
    size = len(data)
    if size > max_bytes:
        errors.add(
            "FileTooLarge",
            "",
            f"the annotation file is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB",
        )
        return False, None
    if size > MAX_JSON_VALUES:  # each counted value takes a byte, so smaller files need no count
        values = data.count(b",") + data.count(b"[") + data.count(b"{")
        if values > MAX_JSON_VALUES:
            errors.add(
                "FileTooComplex",
                "",
                f"the file holds about {values:,} JSON values; the limit is {MAX_JSON_VALUES:,} "
                "(about twice what a dataset at the service's quota needs)",
            )
            return False, None
    if size == 0 or bytes(data[:4096]).isspace() and bytes(data).isspace():
        errors.add("EmptyFile", "", "the annotation file is empty; expected a COCO JSON object")
        return False, None
    head = bytes(data[:3])
    if head.startswith(_UTF16_BOMS):
        errors.add("NotUtf8", "", "the file is UTF-16 encoded; save it as UTF-8")
        return False, None
    if head == _BOM:  # written by some Windows tools; harmless
        data = memoryview(data)[3:]
    try:
        return True, orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        errors.add(*_explain(data, exc))
        return False, None


def _explain(data: bytes | bytearray | memoryview, exc: orjson.JSONDecodeError) -> tuple[str, str, str]:
    msg = exc.msg
    if "depth" in msg or "recursion" in msg:
        return (
            "JsonTooDeep",
            "",
            f"the JSON nests deeper than {JSON_MAX_DEPTH} levels (line {exc.lineno}, column {exc.colno}); "
            "a COCO file needs 4",
        )
    if "UTF-8" in msg:
        raw = bytes(data)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            line = raw.count(b"\n", 0, bad.start) + 1
            column = bad.start - (raw.rfind(b"\n", 0, bad.start) + 1) + 1
            return (
                "NotUtf8",
                "",
                f"the file is not valid UTF-8: byte 0x{raw[bad.start]:02x} at line {line}, column {column} "
                f"(offset {bad.start}); save the file as UTF-8",
            )
    near = bytes(data[max(exc.pos - 20, 0) : exc.pos + 20]).decode("utf-8", "replace")
    if bytes(data[exc.pos : exc.pos + 9]).startswith((b"NaN", b"Infinity", b"-Infinity")):
        msg = "NaN and Infinity are not valid JSON numbers"
    return "InvalidJson", "", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {msg} (near {near!r})"


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pauses the cyclic garbage collector while a file is parsed and checked.

    The parsed document is millions of lists and dicts without a single cycle; with the collector
    on, each allocation burst makes it rescan them (measured: orjson.loads of a 133 MB quota-sized
    file 2.2 s -> 1.0 s). Reference counting still frees everything. Nested and concurrent uses
    (threads of the Function host) share one pause: the collector comes back with the last one.
    """
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()
