"""Datasets in other layouts (docs/formats.md#layouts) converted into Azure COCO in the datasets
container, for the drop flow (docs/formats.md#drop) and the zip import (docs/formats.md#upload).

The converted dataset lives in ``<dataset>/azure-coco/``, beside the source files, which stay
untouched. Its annotation file is two folders deep, so it is never ``<dataset>/<file>.json``: the
drop handler ignores its blob-created event (no loop), and a re-run's listing of the source
leaves that folder out (the output is never read back as a second layout)."""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient

from loupe.enums import AnnotationKind
from loupe.formats import FormatError, Limits, convert_folder
from loupe.formats.bounds import safe_member_name

# uploaded LAST into <dataset>/ it asks for a conversion; ends in .json so Event Grid's subject
# filter (infra: DATASET_EVENTS_SUBJECT_SUFFIX) lets it through, hidden so no reader takes it for data
MARKER = ".loupe-convert.json"
OUTPUT_FOLDER = "azure-coco"
# an HTTP zip import, checked against Content-Length and while streaming (docs/formats.md#upload)
MAX_IMPORT_ZIP_BYTES = 2 * 1024**3


def output_prefix(dataset: str) -> str:
    return f"{dataset}/{OUTPUT_FOLDER}/"


@dataclass
class Uploaded:
    """What an upload wrote: every blob name (to delete on failure) and the annotation files."""

    blobs: list[str]
    annotation_files: dict[str, str]  # URL -> ETag


def source_blobs(container: ContainerClient, dataset: str, limits: Limits) -> list[tuple[str, int]]:
    """(name relative to the folder, size) of every source blob under ``<dataset>/``, without the
    output folder and the marker, within the file and byte limits of loupe/formats/bounds.py."""
    prefix = f"{dataset}/"
    found, total = [], 0
    for blob in container.list_blobs(name_starts_with=prefix):
        rel = blob.name[len(prefix):]
        if not rel or rel.endswith("/") or rel == MARKER or rel.startswith(f"{OUTPUT_FOLDER}/"):
            continue
        found.append((rel, blob.size or 0))
        total += blob.size or 0
        if len(found) > limits.max_files:
            raise FormatError(prefix, f"more than {limits.max_files:,} files (docs/formats.md#limits)")
        if total > limits.max_total_bytes:
            raise FormatError(prefix, f"more than {limits.max_total_bytes:,} bytes in all (docs/formats.md#limits)")
    if not found:
        raise FormatError(prefix, "the folder holds no files besides the marker; upload the dataset, then "
                          f"{MARKER} (docs/formats.md#drop)")
    return found


def download_source(container: ContainerClient, dataset: str, dest: Path, limits: Limits) -> None:
    for rel, _ in source_blobs(container, dataset, limits):
        target = dest / safe_member_name(rel)  # a blob name may hold '..' too
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                container.get_blob_client(f"{dataset}/{rel}").download_blob().readinto(out)
        except (NotADirectoryError, IsADirectoryError, FileExistsError):
            raise FormatError(rel, "is both a file and a folder in the blob listing") from None


def annotation_kind(folder: Path, annotation_files: list[str]) -> AnnotationKind:
    for rel in annotation_files:
        coco = json.loads((folder / rel).read_text(encoding="utf-8"))
        if any("bbox" in ann for ann in coco.get("annotations", []) if isinstance(ann, dict)):
            return AnnotationKind.DETECTION
    return AnnotationKind.CLASSIFICATION


def top_level_json(folder: Path) -> list[str]:
    """The annotation files of a converted folder: annotations.json, or the .json files of an Azure
    COCO source copied unchanged (directly in it, like a drop's)."""
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".json")
    if not names:
        raise FormatError("", "an Azure COCO dataset's .json files must lie at the top of the folder or zip")
    return names


def upload_output(container: ContainerClient, dataset: str, folder: Path, uploaded: Uploaded) -> None:
    """Upload a converted folder under ``<dataset>/azure-coco/``, annotation files last (their URLs
    and ETags into ``uploaded``); ``uploaded.blobs`` grows as it goes, so a failure can be undone."""
    annotation_files = top_level_json(folder)
    prefix = output_prefix(dataset)
    images = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    for rel in [r for r in images if r not in annotation_files] + annotation_files:
        blob = container.get_blob_client(prefix + rel)
        uploaded.blobs.append(blob.blob_name)
        with (folder / rel).open("rb") as data:
            result = blob.upload_blob(data, overwrite=True)
        if rel in annotation_files:
            uploaded.annotation_files[blob.url] = result["etag"]


def delete_blobs(container: ContainerClient, names: list[str]) -> None:
    for name in names:
        try:
            container.delete_blob(name, delete_snapshots="include")
        except ResourceNotFoundError:
            pass


def clear_output(container: ContainerClient, dataset: str) -> None:
    """Remove an earlier conversion's output, so no stale image or file outlives a re-run."""
    delete_blobs(container, [b.name for b in container.list_blobs(name_starts_with=output_prefix(dataset))])


def in_source(exc: FormatError, prefix: str, *temporary: Path) -> FormatError:
    """``exc`` with its place as the user knows it: temporary paths left out, ``prefix`` first."""
    place = exc.place
    for path in temporary:
        place = place.replace(str(path), "")
    place = place.lstrip("/")
    return FormatError(place if place.startswith(prefix) else prefix + place, exc.message)


def convert_dropped(container: ContainerClient, dataset: str, limits: Limits) -> dict[str, str]:
    """Convert the source files under ``<dataset>/`` into ``<dataset>/azure-coco/``; returns the
    annotation files' URL -> ETag. A FormatError names its place as ``<dataset>/<path> ...``;
    on any error nothing of this run's output is left behind."""
    uploaded = Uploaded([], {})
    with tempfile.TemporaryDirectory(prefix="loupe-drop-") as tmp:
        src, out = Path(tmp, "src"), Path(tmp, "out")
        try:
            download_source(container, dataset, src, limits)
            convert_folder(src, out, limits)
            top_level_json(out)
        except FormatError as exc:
            raise in_source(exc, f"{dataset}/", src, out) from None
        clear_output(container, dataset)
        try:
            upload_output(container, dataset, out, uploaded)
        except BaseException:
            delete_blobs(container, uploaded.blobs)
            raise
    return uploaded.annotation_files
