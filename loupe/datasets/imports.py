"""Registering a dataset from a zip in any layout (docs/formats.md#upload): extracted safely
(loupe/formats/bounds.py), converted, uploaded into ``<name>/azure-coco/`` of the datasets
container and registered through DatasetService.register with the validation of a PUT. Any error
deletes what was uploaded, and register stores the record last: nothing is half-registered."""
from __future__ import annotations

import tempfile
from pathlib import Path

from loupe.datasets.conversion import (
    Uploaded,
    annotation_kind,
    delete_blobs,
    in_source,
    output_prefix,
    top_level_json,
    upload_output,
)
from loupe.datasets.record import DatasetRecord
from loupe.datasets.requests import DatasetIn
from loupe.datasets.service import DatasetService, check_name
from loupe.errors import bad_request, conflict, shown
from loupe.formats import FormatError, Limits, convert_folder
from loupe.formats.bounds import extract_zip


def _converted(archive: Path, work: Path, limits: Limits) -> Path:
    src, out = work / "src", work / "out"
    src.mkdir()
    try:
        extract_zip(archive, src, limits)
        convert_folder(src, out, limits)
        top_level_json(out)
    except FormatError as exc:
        exc = in_source(exc, "", archive, src)
        where = exc.place or "the zip"
        raise bad_request(f"The zip cannot be converted: {shown(where)}: {shown(exc.message)}",
                          code="DatasetConversionFailed", target=shown(where)) from None
    return out


def import_zip(datasets: DatasetService, name: str, archive: Path, limits: Limits | None = None) -> DatasetRecord:
    check_name(name)
    if datasets.find(name) is not None:
        raise conflict("DatasetAlreadyExists", f"Dataset '{name}' already exists.")
    container = datasets.storage.container(datasets.settings.datasets_container)
    prefix = output_prefix(name)
    if next(iter(container.list_blobs(name_starts_with=prefix, results_per_page=1)), None) is not None:
        raise conflict("Conflict", f"The datasets container already holds files under '{prefix}'; "
                       "delete them or choose another name.")
    uploaded = Uploaded([], {})
    with tempfile.TemporaryDirectory(prefix="loupe-import-") as tmp:
        out = _converted(archive, Path(tmp), limits or Limits())
        try:
            upload_output(container, name, out, uploaded)
            kind = annotation_kind(out, top_level_json(out))
            body = DatasetIn(annotation_kind=kind, annotation_file_uris=list(uploaded.annotation_files))
            return datasets.register(name, body)
        except BaseException:
            delete_blobs(container, uploaded.blobs)
            raise
