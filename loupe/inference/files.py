"""Where a model's artifacts (loupe.artifacts) come from.

The service reads them from Blob storage (an implementation over the models container lives
with the storage code); FolderModelFiles serves exported models from a local folder laid out
as ``<root>/<model name>/model.onnx, labels.json, preprocessing.json``; LocalModelFiles is the one
model in a single folder (a trainer's export, an evaluation's download).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

from loupe.artifacts import MODEL_FILE


@runtime_checkable
class ModelFiles(Protocol):
    def version(self, model_name: str) -> str | None:
        """A token that changes whenever the model is retrained or deleted (e.g. the etag of
        model.onnx); None when there is no trained model of that name."""

    def read(self, model_name: str, file: str) -> bytes:
        """The bytes of one artifact file; FileNotFoundError when it does not exist."""


def _safe_file(file: str) -> str:
    if "/" in file or "\\" in file or file in (".", ".."):
        raise FileNotFoundError(f"invalid artifact file name {file!r}")
    return file


def _version_of(model_file: Path) -> str | None:
    """model.onnx's mtime and size: the trainer writes it last, so it changes with every export."""
    try:
        stat = model_file.stat()
    except FileNotFoundError:
        return None
    return f"{stat.st_mtime_ns:x}-{stat.st_size:x}"


class FolderModelFiles:
    """Models in ``root/<model name>/``; the version is model.onnx's mtime and size."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, model_name: str, file: str) -> Path:
        # names come from URLs: never let one climb out of the root
        if not model_name or "/" in model_name or "\\" in model_name or model_name in (".", ".."):
            raise FileNotFoundError(f"invalid model name {model_name!r}")
        return self.root / model_name / _safe_file(file)

    def version(self, model_name: str) -> str | None:
        try:
            return _version_of(self._path(model_name, MODEL_FILE))
        except FileNotFoundError:  # an invalid name: no such model
            return None

    def read(self, model_name: str, file: str) -> bytes:
        return self._path(model_name, file).read_bytes()


class LocalModelFiles:
    """The one model in ``folder`` (``folder/model.onnx``, ...), whatever name it is asked for;
    the name only labels error messages."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def version(self, model_name: str) -> str | None:
        return _version_of(self.folder / MODEL_FILE)

    def read(self, model_name: str, file: str) -> bytes:
        return (self.folder / _safe_file(file)).read_bytes()
