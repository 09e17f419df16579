"""Raw multipart/form-data parsing for image uploads.

Framework form parsers treat a part without a filename as a text field (lossy for bytes, see
docs/wire-contract.md#custom-vision-sdk-expectations), so the body is parsed here with python-multipart's streaming parser and the
image is the first part that carries data, whatever its name or filename.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header


class MultipartError(ValueError):
    pass


@dataclass
class Part:
    headers: dict[str, str] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)

    @property
    def name(self) -> str | None:
        _, options = parse_options_header(self.headers.get("content-disposition", ""))
        value = options.get(b"name")
        return value.decode("utf-8", "replace") if value else None


def parse_parts(content_type: str, body: bytes, max_parts: int = 16) -> list[Part]:
    media, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if media != b"multipart/form-data" or not boundary:
        raise MultipartError("multipart/form-data needs a boundary parameter")
    parts: list[Part] = []
    header = {"field": b"", "value": b""}

    def on_part_begin() -> None:
        if len(parts) >= max_parts:
            raise MultipartError(f"more than {max_parts} parts")
        parts.append(Part())

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].data.extend(data[start:end])

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        parts[-1].headers[header["field"].decode("latin-1").lower()] = header["value"].decode("latin-1")
        header["field"], header["value"] = b"", b""

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
    })
    try:
        parser.write(body)
        parser.finalize()
    except MultipartError:
        raise
    except Exception as exc:
        raise MultipartError(f"the multipart body is malformed: {exc}") from None
    return parts


def first_file(content_type: str, body: bytes) -> bytes:
    for part in parse_parts(content_type, body):
        if part.data:
            return bytes(part.data)
    raise MultipartError("the multipart body holds no image part")
