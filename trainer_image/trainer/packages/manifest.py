"""The zip layout of an export package (docs/exports.md), shared by every platform.

A package zip holds, at its root: the model file(s) of the platform, ``labels.txt`` (one tag
name a line, in output order), ``metadata_properties.json`` (the image-input metadata, the same
keys as the ONNX ``metadata_props``) and ``cvexport.manifest`` (JSON: what the package is and
which file is which), as Custom Vision's exports lay them out.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

LABELS_TXT = "labels.txt"
METADATA_FILE = "metadata_properties.json"
MANIFEST_FILE = "cvexport.manifest"
EXPORTER_VERSION = "loupe-1"
SCHEMA_VERSION = "1.0"


class PackageError(Exception):
    """A package cannot be built: unknown platform/flavor, unusable model folder or a converter
    failure; ``message`` says which, for the export job's error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PackageInfo:
    """What build_package wrote."""

    path: Path
    platform: str  # "ONNX" | "OpenVino"
    flavor: str | None  # None | "ONNXFloat16"
    domain: str  # "Classification" | "ObjectDetection"
    labels: list[str]
    input_size: tuple[int, int]  # fixed (height, width) of the package's input
    files: list[str] = field(default_factory=list)  # names inside the zip


def labels_txt(labels: list[str]) -> bytes:
    if any("\n" in name or "\r" in name for name in labels):
        raise PackageError("a tag name holds a line break; labels.txt holds one name a line")
    return "".join(name + "\n" for name in labels).encode("utf-8")


def manifest(*, name: str, domain: str, platform: str, flavor: str | None, model_files: list[str],
             model_bytes: bytes) -> dict[str, object]:
    """cvexport.manifest: Custom Vision's keys, plus the Loupe model name it came from."""
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "ExporterVersion": EXPORTER_VERSION,
        "Name": name,
        "DomainType": domain,
        "Platform": platform,
        "Flavor": flavor,
        "ExportedDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ModelFileName": model_files[0],
        "ModelFiles": model_files,
        "ModelFileSHA1": hashlib.sha1(model_bytes).hexdigest(),  # noqa: S324 - a checksum, as Custom Vision's
        "LabelFileName": LABELS_TXT,
        "MetadataPropsFileName": METADATA_FILE,
    }


def write_zip(out_zip: Path, model_files: dict[str, bytes], labels: list[str], metadata: dict[str, str],
              manifest_data: dict[str, object]) -> list[str]:
    """Write the package zip (atomically: a half-written zip never sits at ``out_zip``)."""
    return write_entries(out_zip, package_entries(model_files, labels, metadata, manifest_data))


def package_entries(model_files: dict[str, bytes], labels: list[str], metadata: dict[str, str],
                    manifest_data: dict[str, object], prefix: str = "") -> dict[str, bytes]:
    """Every package's files (zip name -> bytes): the model files, labels.txt, the metadata and the
    manifest, under ``prefix`` (the Docker package keeps them in ``app/``)."""
    entries = {**model_files, LABELS_TXT: labels_txt(labels),
               METADATA_FILE: json.dumps(metadata, indent=2).encode("utf-8"),
               MANIFEST_FILE: json.dumps(manifest_data, indent=2).encode("utf-8")}
    return {prefix + name: data for name, data in entries.items()}


def write_entries(out_zip: Path, entries: dict[str, bytes]) -> list[str]:
    """Write ``entries`` (zip name -> bytes) atomically: a half-written zip never sits at ``out_zip``."""
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    partial = out_zip.with_name(out_zip.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    partial.replace(out_zip)
    return list(entries)
