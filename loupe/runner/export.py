"""An export job (``python -m trainer`` in export mode): download the model's artifacts (a detector's
weights too, when it has them), build the package with the trainer's ``PackageFn``
(``trainer.packages.build_package``), upload the zip to ``<model>/exports/<key>.zip`` and report the
outcome into the export's run record."""
from __future__ import annotations

import logging
import shutil
import signal
from pathlib import Path
from typing import Callable

from azure.core.exceptions import ResourceNotFoundError

from loupe.artifacts import DETECTOR_WEIGHTS_FILE, LABELS_FILE, MODEL_FILE, PREPROCESSING_FILE
from loupe.jobs.spec import JobSpec
from loupe.runner.reporting import RunReporter
from loupe.runner.workdir import make_workdir
from loupe.runs.record import RunStatus
from loupe.runs.table import StaleRun
from loupe.storage.clients import Storage

log = logging.getLogger(__name__)

# (model folder, zip to write, platform, flavor) -> anything; raises PackageFailed with the reason
PackageFn = Callable[[Path, Path, str, "str | None"], object]
EXPORT_FAILED = "ExportFailed"


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
        package(model_dir, out_zip, spec.export_platform or "", spec.export_flavor)
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
