"""An export job (``python -m trainer`` in export mode): download the model's artifacts (a detector's
weights too, when it has them), build the package with the trainer's ``PackageFn``
(``trainer.packages.build_package``), upload the zip to ``<model>/exports/<key>.zip`` and report the
outcome into the export's run record. The package function gets the model's package cache: what it
keeps there (onnx2tf's output) makes the model's next TensorFlow-family export take seconds
(docs/exports.md#the-conversion-cache)."""
from __future__ import annotations

import logging
import re
import shutil
import signal
from pathlib import Path
from typing import Callable, Protocol

from azure.core.exceptions import ResourceNotFoundError

from loupe.artifacts import DETECTOR_WEIGHTS_FILE, LABELS_FILE, MODEL_FILE, PREPROCESSING_FILE
from loupe.jobs.spec import JobSpec
from loupe.runner.reporting import RunReporter
from loupe.runner.workdir import make_workdir
from loupe.runs.record import RunStatus
from loupe.runs.table import StaleRun
from loupe.storage.clients import Storage

log = logging.getLogger(__name__)

EXPORT_FAILED = "ExportFailed"
CACHE_FOLDER = "cache"  # <model>/cache/<name>: removed with the model's other blobs
_CACHE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class PackageCache(Protocol):
    """Intermediates a package build keeps for the model's next export. Best effort both ways:
    a miss or a failed keep costs time, never the export."""

    def fetch(self, name: str, dest: Path) -> bool:
        """Write the kept ``name`` to ``dest``; False when there is none."""

    def keep(self, name: str, src: Path) -> None:
        """Keep the file ``src`` as ``name``."""


# (model folder, zip to write, platform, flavor, cache) -> anything; raises PackageFailed with the reason
PackageFn = Callable[[Path, Path, str, "str | None", PackageCache], object]


class BlobPackageCache:
    """A PackageCache in the model's folder of the models container (``<model>/cache/``)."""

    def __init__(self, container, prefix: str):
        self.container, self.prefix = container, prefix

    def _blob(self, name: str) -> str:
        if not _CACHE_NAME.fullmatch(name):  # a plain file name: never a path out of the folder
            raise ValueError(f"not a cache name: {name!r}")
        return f"{self.prefix}{name}"

    def fetch(self, name: str, dest: Path) -> bool:
        try:
            with dest.open("wb") as out:
                self.container.download_blob(self._blob(name)).readinto(out)
            return True
        except Exception as exc:  # a cache that cannot be read is a miss, as is one never kept
            if not isinstance(exc, ResourceNotFoundError):
                log.warning("the package cache's %s could not be read (%s): building without it", name,
                            type(exc).__name__)
            dest.unlink(missing_ok=True)
            return False

    def keep(self, name: str, src: Path) -> None:
        try:
            with src.open("rb") as data:
                self.container.upload_blob(self._blob(name), data, overwrite=True)
        except Exception as exc:
            log.warning("the package cache could not keep %s (%s)", name, type(exc).__name__)


class PackageFailed(Exception):
    """The package cannot be built (the trainer's PackageError): its message is the run's reason."""


def _error(message: str) -> dict[str, str]:
    return {"code": EXPORT_FAILED, "message": message[:2000]}


def _download_optional(container, blob: str, path: Path) -> None:
    """A detector's weights (the static-shape packages are rebuilt from them); absent for a
    classifier or a detector trained before they were saved, which the PackageFn then refuses."""
    try:
        path.write_bytes(container.download_blob(blob).readall())
    except ResourceNotFoundError:
        pass


def run_export(spec: JobSpec, storage: Storage, package: PackageFn, scratch_root: str | None = None) -> int:
    reporter = RunReporter.for_spec(spec, storage)
    signal.signal(signal.SIGTERM, lambda *_: reporter.stop_requested.set())
    workdir = make_workdir("loupe-export-", scratch_root)
    try:
        reporter.start()
        reporter.progress("loading model", 0.0)
        container = storage.container(spec.output.container)
        # the folder's name is the package's Loupe.ModelName (docs/exports.md)
        model_dir = workdir / spec.model_name
        model_dir.mkdir()
        try:
            for name in (MODEL_FILE, LABELS_FILE, PREPROCESSING_FILE):
                (model_dir / name).write_bytes(container.download_blob(spec.output.blob(name)).readall())
            _download_optional(container, spec.output.blob(DETECTOR_WEIGHTS_FILE), model_dir / DETECTOR_WEIGHTS_FILE)
        except Exception:
            reporter.finish(RunStatus.FAILED,
                            error=_error(f"the trained model '{spec.model_name}' could not be read"))
            return 0
        reporter.progress("packaging", 20.0, f"{spec.export_platform} {spec.export_flavor or ''}".strip())
        out_zip = workdir / f"{spec.export_key}.zip"
        cache = BlobPackageCache(container, spec.output.blob(f"{CACHE_FOLDER}/"))
        package(model_dir, out_zip, spec.export_platform or "", spec.export_flavor, cache)
        reporter.progress("uploading", 90.0)
        with out_zip.open("rb") as data:
            container.upload_blob(spec.output.blob(f"exports/{spec.export_key}.zip"), data, overwrite=True)
        reporter.finish(RunStatus.SUCCEEDED)
    except StaleRun as exc:
        log.warning("stopping: %s no longer belongs to this run", exc)
    except PackageFailed as exc:
        reporter.finish(RunStatus.FAILED, error=_error(str(exc)))
    except Exception as exc:
        log.exception("export failed")
        reporter.finish(RunStatus.FAILED,
                        error=_error(f"internal error during export ({type(exc).__name__})"))
    finally:
        reporter.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0
