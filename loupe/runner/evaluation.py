"""An evaluation job (``python -m trainer`` in evaluation mode): download the test set, run the model's
exported ONNX file over it with the serving preprocessing, and store modelPerformance.
Needs no torch: it runs the very artifacts that serve predictions."""
from __future__ import annotations

import logging
import shutil
import signal

from loupe.artifacts import LABELS_FILE, MODEL_FILE, PREPROCESSING_FILE, labels_from_json
from loupe.coco import Purpose
from loupe.enums import EvaluationErrorCode, TrainingErrorCode
from loupe.jobs.spec import JobSpec
from loupe.runner.download import DatasetUnavailable, download_dataset
from loupe.runner.reporting import RunReporter
from loupe.runner.scoring import score_exported
from loupe.runner.workdir import make_workdir
from loupe.runs.record import RunStatus
from loupe.runs.table import StaleRun
from loupe.storage.clients import Storage

log = logging.getLogger(__name__)


def _error(code: EvaluationErrorCode, message: str) -> dict[str, str]:
    return {"code": code.value, "message": message[:2000]}


def run_evaluation(spec: JobSpec, storage: Storage, scratch_root: str | None = None) -> int:
    reporter = RunReporter.for_spec(spec, storage)
    signal.signal(signal.SIGTERM, lambda *_: reporter.stop_requested.set())
    workdir = make_workdir("loupe-eval-", scratch_root)
    try:
        reporter.start()
        reporter.progress("loading model", 0.0)
        container = storage.container(spec.output.container)
        model_dir = workdir / "model"
        model_dir.mkdir()
        try:
            for name in (MODEL_FILE, LABELS_FILE, PREPROCESSING_FILE):
                (model_dir / name).write_bytes(container.download_blob(spec.output.blob(name)).readall())
        except Exception:
            reporter.finish(RunStatus.FAILED, error=_error(
                EvaluationErrorCode.MODEL_NOT_FOUND, f"the trained model '{spec.model_name}' could not be read"))
            return 0
        labels = labels_from_json((model_dir / LABELS_FILE).read_bytes())
        test = download_dataset(spec.evaluation_dataset, workdir / "test", storage, storage.settings,
                                purpose=Purpose.EVALUATION, label_space=labels,
                                progress=lambda done, total: reporter.progress(
                                    "downloading", 80.0 * done / max(1, total), f"{done}/{total} images"))
        reporter.progress("scoring", 80.0, f"{len(test.images)} images")
        result = score_exported(model_dir, test.images)
        reporter.finish(RunStatus.SUCCEEDED, performance=result)
    except StaleRun as exc:
        log.warning("stopping: %s no longer belongs to this run", exc)
    except DatasetUnavailable as exc:
        code = (EvaluationErrorCode.DATASET_NOT_FOUND if exc.code is TrainingErrorCode.DATASET_NOT_FOUND
                else EvaluationErrorCode.DATASET_CORRUPT)
        reporter.finish(RunStatus.FAILED, error=_error(code, exc.message))
    except Exception as exc:
        log.exception("evaluation failed")
        reporter.finish(RunStatus.FAILED, error=_error(
            EvaluationErrorCode.INTERNAL, f"internal error during evaluation ({type(exc).__name__})"))
    finally:
        reporter.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0
