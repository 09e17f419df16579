"""A training job around a trainer's ``fit``: JobSpec in, a model's artifacts and outcome out.

Downloads the dataset into a private working folder, hands the examples and a context (deadline,
seed, progress, cancel flag, checkpoints) to ``fit``, exports the trained model, scores it (the
given test set through the exported file, else the trainer's held-out estimate), uploads the
artifacts next to the model and reports every step into the model's run record. The working
folder - the only copy of the customer's images - is removed however the run ends. The per-image
predictions behind the measurement go next to it as holdout.json (loupe.artifacts.Holdout).

Returns 0 whenever the outcome was recorded (even a failed model): a non-zero exit tells the
backend the job itself broke, which the reconciler handles (resubmit once, then fail).
"""
from __future__ import annotations

import json
import logging
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from loupe.artifacts import MODEL_FILE, Holdout
from loupe.coco import Purpose
from loupe.enums import TrainingErrorCode
from loupe.inference import Predictor, load_predictor_from_folder
from loupe.jobs.spec import JobSpec
from loupe.runner.checkpoints import BlobCheckpointStore, CheckpointStore
from loupe.runner.download import DatasetUnavailable, download_dataset
from loupe.runner.examples import LocalDataset
from loupe.runner.reporting import RunReporter
from loupe.runner.scoring import performance_and_holdout, with_measurement, write_holdout, write_metrics
from loupe.runner.workdir import make_workdir
from loupe.runs.record import OpaqueRun, RunStatus
from loupe.runs.table import StaleRun
from loupe.storage.clients import Storage

log = logging.getLogger(__name__)

TRAINING_REPORT_FILE = "training.json"
# Out of the budget, what is kept for export, evaluation and upload after training stops.
FINISH_RESERVE_FRACTION = 0.1
FINISH_RESERVE_MAX_SECONDS = 120.0


class TrainingFailed(Exception):
    """A failure the user is told about with a documented ``model.error.code``."""

    code = TrainingErrorCode.UNKNOWN

    def __init__(self, message: str, code: TrainingErrorCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class TrainingCancelled(Exception):
    """The run was asked to stop (cancel, SIGTERM) before it finished."""


class TrainedModel(Protocol):
    """What a trainer's fit returns.

    Optionally also ``holdout_predictions() -> loupe.artifacts.Holdout | None``: the per-image
    predictions behind ``holdout_performance`` (None when no image was held out), written as
    holdout.json; a model without the method gets no holdout.json unless a test set is given.
    """

    def export(self, folder: Path) -> None:
        """Write the artifact files (loupe.artifacts) into ``folder``."""

    def holdout_performance(self) -> dict:
        """modelPerformance on images held out of training (``{"tagPerformance": {}}`` when none could be)."""

    def report(self) -> dict:
        """How the model was made (recipe, choices, what a resume restored): JSON-able."""


@dataclass
class JobContext:
    """What the machine-learning code sees (the trainer's TrainingContext): the run's deadline,
    progress into the run record, the cancel flag, checkpoints in blob storage."""

    deadline: float  # time.monotonic() by which training (including export) must have ended
    seed: int
    reporter: RunReporter
    checkpoints: CheckpointStore

    def progress(self, phase: str, percent: float, message: str = "", eta_seconds: float | None = None) -> None:
        self.reporter.progress(phase, percent, message, eta_seconds)

    def should_stop(self) -> bool:
        return self.reporter.should_stop()


class Fit(Protocol):
    def __call__(self, spec: JobSpec, train: LocalDataset, context: JobContext) -> TrainedModel: ...


def _error(code: TrainingErrorCode, message: str) -> dict[str, str]:
    return {"code": code.value, "message": message[:2000]}


def classify_failure(exc: Exception, stop_requested: bool) -> tuple[RunStatus, dict | None]:
    """The outcome a failed run records: its documented code, or cancelled, or unknown."""
    if isinstance(exc, TrainingFailed):
        return RunStatus.FAILED, _error(exc.code, str(exc))
    if isinstance(exc, DatasetUnavailable):
        return RunStatus.FAILED, _error(exc.code, exc.message)
    if isinstance(exc, TrainingCancelled) or stop_requested:
        return RunStatus.CANCELLED, None
    log.error("training failed", exc_info=exc)
    return RunStatus.FAILED, _error(TrainingErrorCode.UNKNOWN, f"internal error in the trainer "
                                    f"({type(exc).__name__}); see the model's logs")


class _TrainingRun:
    def __init__(self, spec: JobSpec, storage: Storage, fit: Fit, scratch_root: str | None) -> None:
        self.spec, self.storage, self.fit = spec, storage, fit
        self.reporter = RunReporter.for_spec(spec, storage)
        self.workdir = make_workdir("loupe-run-", scratch_root)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.reporter.stop_requested.set())
        try:
            self.reporter.start()
            performance = self._train()
            self.reporter.finish(RunStatus.SUCCEEDED, performance=performance)
            log.info("model %s succeeded: %s", self.spec.model_name, performance)
        except StaleRun as exc:
            log.warning("stopping: %s no longer belongs to this run", exc)
        except Exception as exc:
            status, error = classify_failure(exc, self.reporter.should_stop())
            self.reporter.finish(status, error=error)
        finally:
            self.reporter.close()
            shutil.rmtree(self.workdir, ignore_errors=True)
        return 0

    def _download(self) -> tuple[LocalDataset, LocalDataset | None]:
        spec, settings = self.spec, self.storage.settings
        assert spec.training_dataset is not None, "a training JobSpec names its training dataset"
        self.reporter.progress("downloading", 0.0, f"fetching dataset '{spec.training_dataset.name}'")
        train = download_dataset(spec.training_dataset, self.workdir / "train", self.storage, settings,
                                 progress=lambda done, total: self.reporter.progress(
                                     "downloading", 100.0 * done / max(1, total), f"{done}/{total} images"))
        test = None
        if spec.evaluation_dataset is not None:
            test = download_dataset(spec.evaluation_dataset, self.workdir / "test", self.storage, settings,
                                    purpose=Purpose.EVALUATION, label_space=train.labels)
        return train, test

    def _context(self, record: OpaqueRun, started: float) -> JobContext:
        # the budget counts what earlier attempts of this run already spent
        remaining = max(0.0, self.spec.budget_seconds - record.run_seconds)
        reserve = min(FINISH_RESERVE_MAX_SECONDS, FINISH_RESERVE_FRACTION * remaining)
        output = self.spec.output
        checkpoints = BlobCheckpointStore(self.storage.container(output.container),
                                          output.blob(f"checkpoints/{self.spec.run_id}/"))
        return JobContext(deadline=started + remaining - reserve, seed=self.spec.seed, reporter=self.reporter,
                          checkpoints=checkpoints)

    def _train(self) -> dict:
        record = self.reporter.record()
        started = time.monotonic()
        train, test = self._download()
        model = self.fit(self.spec, train, self._context(record, started))
        out = self.workdir / "model"
        out.mkdir()
        model.export(out)
        # loaded as serving loads it (signature, labels, format version): a model serving can't
        # load is never uploaded; a given test set stays unseen by fit and is scored once, here
        exported = load_predictor_from_folder(out)
        if test:
            performance, holdout = performance_and_holdout(exported, test.images, source="test")
        else:
            performance, holdout = model.holdout_performance(), _holdout_predictions(model)
        performance = with_measurement(performance, holdout)
        write_metrics(out, performance)
        _write_holdout(out, holdout, exported)
        self._write_report(out / TRAINING_REPORT_FILE, model.report(), record)
        self.reporter.progress("uploading", 99.0, "writing the model's artifacts")
        self.reporter.record()  # still ours? (a deleted/re-created model must not get these files)
        container = self.storage.container(self.spec.output.container)
        for path in sorted(out.iterdir(), key=lambda p: p.name == MODEL_FILE):  # the model last: it marks completion
            with open(path, "rb") as data:
                container.upload_blob(self.spec.output.blob(path.name), data, overwrite=True)
        return performance

    def _write_report(self, path: Path, report: dict, record: OpaqueRun) -> None:
        """How the model was made, and where the time went: the wait before this job started,
        and each phase it reported."""
        started = record.started or record.created
        report = dict(report, timings={
            "queuedAndProcessStartSeconds": round((started - record.created).total_seconds(), 3),
            "phaseSeconds": self.reporter.phase_durations(),
            "attempt": record.attempt,
        })
        path.write_text(json.dumps(report, indent=2, default=str))


def _write_holdout(folder: Path, holdout: Holdout | None, exported: Predictor) -> None:
    """holdout.json next to the model when any image was held out, and its task and labels are
    the exported model's (a trainer's mismatch is logged, not written: readers trust the file)."""
    if holdout is not None and (holdout.task, holdout.labels) != (exported.preprocessing.task, list(exported.labels)):
        log.warning("not writing holdout.json: its task and labels (%s, %s) are not the exported model's",
                    holdout.task, holdout.labels)
        return
    write_holdout(folder, holdout)


def _holdout_predictions(model: TrainedModel) -> Holdout | None:
    """The model's optional ``holdout_predictions()`` (see TrainedModel), None without it."""
    method = getattr(model, "holdout_predictions", None)
    return method() if callable(method) else None


def run_training(spec: JobSpec, storage: Storage, fit: Fit, scratch_root: str | None = None) -> int:
    return _TrainingRun(spec, storage, fit, scratch_root).run()
