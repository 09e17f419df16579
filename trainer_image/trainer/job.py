"""The trainer's orchestration: JobSpec in, a model (or an evaluation) out.

Reads the spec from Loupe's storage, downloads the dataset into a private working folder,
trains within the budget, exports and checks the ONNX model, computes modelPerformance,
uploads the artifacts next to the model and reports every step into the model's Table entity.
The working folder - the only copy of the customer's images - is removed however the run ends.

Exit code 0 whenever the outcome was recorded (even a failed model): a non-zero exit tells the
backend the run itself broke, which the reconciler handles (resubmit once, then fail).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from loupe.coco import Purpose
from loupe.datasets.download import DatasetUnavailable, LocalDataset, download_dataset
from loupe.enums import ModelKind, ModelStatus, TrainingErrorCode
from loupe.evaluations.scoring import ExportedModel, performance, write_metrics
from loupe.jobs.reporting import ModelRunReporter
from loupe.jobs.spec import JOB_SPEC_ENV, JobSpec
from loupe.metrics import classification_performance, multilabel_performance
from loupe.models.repository import ModelRepository, StaleRun
from loupe.settings import get_settings
from loupe.storage.checkpoints import BlobCheckpointStore
from loupe.storage.clients import Storage
from trainer.context import CheckpointStore
from trainer.errors import Cancelled, Diverged, ImagesRejected, NotEnoughBudget

log = logging.getLogger("trainer")

TRAINING_REPORT_FILE = "training.json"
# Out of the budget, what is kept for export, evaluation and upload after training stops.
FINISH_RESERVE_FRACTION = 0.1
FINISH_RESERVE_MAX_SECONDS = 120.0


def read_spec(storage: Storage, reference: str) -> JobSpec:
    """``reference`` is "<container>/<blob>" in Loupe's storage, or a local file path."""
    path = Path(reference)
    if path.is_file():
        return JobSpec.model_validate_json(path.read_bytes())
    container, _, blob = reference.partition("/")
    return JobSpec.model_validate_json(storage.container(container).download_blob(blob).readall())


def _error(code: TrainingErrorCode, message: str) -> dict[str, str]:
    return {"code": code.value, "message": message[:2000]}


@dataclass
class BudgetContext:
    """The TrainingContext the ML code sees: the run's deadline, progress into the model's
    entity, the cancel flag, checkpoints in blob storage."""

    deadline: float
    seed: int
    reporter: ModelRunReporter
    checkpoints: CheckpointStore

    def progress(self, phase: str, percent: float, message: str = "", eta_seconds: float | None = None) -> None:
        self.reporter.progress(phase, percent, message, eta_seconds)

    def should_stop(self) -> bool:
        return self.reporter.should_stop()


@dataclass
class TrainingOutcome:
    files: list[Path]
    performance: dict


def _holdout_performance(result) -> dict:
    """modelPerformance from the held-out part of the training set (no test set given)."""
    holdout = result.holdout
    if holdout is None or len(holdout.targets) == 0:
        return {"tagPerformance": {}}  # too few images to hold any out
    if result.multilabel:
        return multilabel_performance(holdout.scores, holdout.targets, result.labels)
    return classification_performance(holdout.scores, holdout.targets, result.labels)


def train_and_export(spec: JobSpec, train: LocalDataset, test: LocalDataset | None, out_dir: Path,
                     ctx: BudgetContext) -> TrainingOutcome:
    if spec.model_kind is ModelKind.DETECTOR:
        import torch

        from trainer.detection import export_detector, train_detector
        from trainer.detection.registry import preferred_starting_point

        starting_point = preferred_starting_point(spec.backbone, gpu=torch.cuda.is_available())
        log.info("detector starting point: %s", starting_point)

        # the detector picks its weights and when to stop on its own held-out images: a given test
        # set stays unseen and is scored once, through the exported model, below
        result = train_detector(train.images, train.labels, ctx=ctx, backbone=starting_point)
        export_detector(result, out_dir)
        measured = performance(ExportedModel(out_dir), test.images) if test else result.holdout_performance()
    else:
        from trainer.classification import LabelledImage, export_classifier, train_classifier

        def labelled(images):
            return [LabelledImage(image.path, list(image.labels)) for image in images]

        # a given test set is scored once, through the exported model, below
        result = train_classifier(labelled(train.images), train.labels, multilabel=train.multilabel, ctx=ctx,
                                  backbone=spec.backbone)
        export_classifier(result, out_dir, progress=lambda phase, percent, message: ctx.progress(
            phase, percent, message))
        measured = performance(ExportedModel(out_dir), test.images) if test else _holdout_performance(result)
    write_metrics(out_dir, measured)
    # how the model was made (method, views, epochs, what a resume restored): for users and tests
    stats = result.stats.to_dict() if hasattr(result.stats, "to_dict") else dict(vars(result.stats))
    (out_dir / TRAINING_REPORT_FILE).write_text(json.dumps(stats, indent=2, default=str))
    return TrainingOutcome(files=sorted(out_dir.iterdir()), performance=measured)


def run_training(spec: JobSpec, storage: Storage) -> int:
    settings = storage.settings
    reporter = ModelRunReporter(ModelRepository(storage), spec.model_name, spec.run_id)
    signal.signal(signal.SIGTERM, lambda *_: reporter.stop_requested.set())
    scratch_root = os.environ.get("AZ_BATCH_TASK_WORKING_DIR") or None
    workdir = Path(tempfile.mkdtemp(prefix="loupe-run-", dir=scratch_root))
    try:
        reporter.start()
        record = reporter.record()
        # the budget counts what earlier attempts of this run already spent
        remaining = max(0.0, spec.budget_seconds - record.training_seconds)
        started = time.monotonic()
        reporter.progress("downloading", 0.0, f"fetching dataset '{spec.training_dataset.name}'")
        train = download_dataset(spec.training_dataset, workdir / "train", storage, settings,
                                 progress=lambda done, total: reporter.progress(
                                     "downloading", 100.0 * done / max(1, total), f"{done}/{total} images"))
        test: LocalDataset | None = None
        if spec.evaluation_dataset is not None:
            test = download_dataset(spec.evaluation_dataset, workdir / "test", storage, settings,
                                    purpose=Purpose.EVALUATION, label_space=train.labels)
        reserve = min(FINISH_RESERVE_MAX_SECONDS, FINISH_RESERVE_FRACTION * remaining)
        context = BudgetContext(
            deadline=started + remaining - reserve,
            seed=spec.seed,
            reporter=reporter,
            checkpoints=BlobCheckpointStore(storage.container(spec.output.container),
                                            spec.output.blob(f"checkpoints/{spec.run_id}/")),
        )
        outcome: TrainingOutcome = train_and_export(spec, train, test, workdir / "model", context)
        _add_timings(workdir / "model" / TRAINING_REPORT_FILE, reporter, record)
        reporter.progress("uploading", 99.0, "writing the model's artifacts")
        reporter.record()  # still ours? (a deleted/re-created model must not get these files)
        container = storage.container(spec.output.container)
        for path in sorted(outcome.files, key=lambda p: p.name == "model.onnx"):  # model.onnx last
            with open(path, "rb") as data:
                container.upload_blob(spec.output.blob(path.name), data, overwrite=True)
        reporter.finish(ModelStatus.SUCCEEDED, performance=outcome.performance)
        log.info("model %s succeeded: %s", spec.model_name, outcome.performance)
    except StaleRun as exc:
        log.warning("stopping: %s no longer belongs to this run", exc)
    except DatasetUnavailable as exc:
        reporter.finish(ModelStatus.FAILED, error=_error(exc.code, exc.message))
    except ImagesRejected as exc:
        reporter.finish(ModelStatus.FAILED, error=_error(TrainingErrorCode.DATASET_CORRUPT, str(exc)))
    except Exception as exc:  # classified by the ML layer's exception types
        code, message, status = classify_failure(exc, reporter.should_stop())
        if status is ModelStatus.FAILED and code is TrainingErrorCode.UNKNOWN:
            log.exception("training failed")
        reporter.finish(status, error=_error(code, message) if code else None)
    finally:
        reporter.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def classify_failure(exc: Exception, stop_requested: bool) -> tuple[TrainingErrorCode | None, str, ModelStatus]:
    if isinstance(exc, Cancelled) or (stop_requested and not isinstance(exc, (NotEnoughBudget, Diverged))):
        return None, "cancelled", ModelStatus.CANCELLED
    if isinstance(exc, NotEnoughBudget):
        return TrainingErrorCode.NOT_ENOUGH_BUDGET, str(exc), ModelStatus.FAILED
    if isinstance(exc, Diverged):
        return TrainingErrorCode.DIVERGED, str(exc), ModelStatus.FAILED
    return TrainingErrorCode.UNKNOWN, f"internal error in the trainer ({type(exc).__name__}); see the model's logs", \
        ModelStatus.FAILED


def _add_timings(report: Path, reporter: ModelRunReporter, record) -> None:
    """Where the time went: the wait before this trainer started, and each phase it reported."""
    data = json.loads(report.read_text())
    started = record.started or record.created
    data["timings"] = {
        "queuedAndProcessStartSeconds": round((started - record.created).total_seconds(), 3),
        "phaseSeconds": reporter.phase_durations(),
        "attempt": record.attempt,
    }
    report.write_text(json.dumps(data, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description="Loupe's trainer: runs one JobSpec.")
    parser.add_argument("--spec", help=f"'<container>/<blob>' or a file (default: ${JOB_SPEC_ENV})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("azure", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    reference = args.spec or os.environ.get(JOB_SPEC_ENV)
    if not reference:
        parser.error(f"no job spec: pass --spec or set {JOB_SPEC_ENV}")
    storage = Storage(get_settings())
    spec = read_spec(storage, reference)
    log.info("job %s: %s model %s (%s), budget %.0f s", spec.job_id, spec.mode, spec.model_name,
             spec.model_kind.value, spec.budget_seconds)
    if spec.mode == "train":
        return run_training(spec, storage)
    from loupe.evaluations.run import run_evaluation

    return run_evaluation(spec, storage, scratch_root=os.environ.get("AZ_BATCH_TASK_WORKING_DIR") or None)
