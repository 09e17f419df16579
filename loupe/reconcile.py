"""Reconciliation: compare models that should be moving (notStarted, training, cancelling) with
their backend's view and the trainer's heartbeat, so no model stays in flight forever.

- a job that ended without the trainer recording an outcome (killed, OOM, crashed) is resubmitted
  once - the trainer resumes from its checkpoint - and fails after that;
- a job the backend no longer knows, a trainer whose heartbeat stopped, or a run far past its
  budget ends ``failed`` with the reason;
- a cancel whose job is gone ends ``cancelled``; a preempted (Spot) job is left to the backend's
  requeue and noted in the model's progress.
Evaluations and exports (runs of a model, never resubmitted) end ``failed`` when their job is gone,
crashed or went silent. Lives above models, evaluations and exports (it reconciles all three); runs
from a timer function on Azure and from a thread of the local host.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Iterable, TypeVar

from loupe.enums import EvaluationErrorCode, TrainingErrorCode
from loupe.evaluations.record import EvaluationRecord
from loupe.evaluations.service import EvaluationService
from loupe.exports.record import ExportRecord
from loupe.exports.service import ExportService
from loupe.jobs.backend import JobBackend, JobState, JobStatus
from loupe.models.record import ModelRecord
from loupe.models.service import ModelService
from loupe.runner.export import EXPORT_FAILED
from loupe.runs.record import RunRecord, RunStatus
from loupe.storage.entities import utc_now

log = logging.getLogger(__name__)
R = TypeVar("R", bound=RunRecord)

MAX_ATTEMPTS = 2  # the first run plus one resubmission after a crash
# A run may overrun its budget by this much (start-up, download, export) before it is stopped.
OVERRUN = timedelta(minutes=30)
# A notStarted model without a job for this long was never submitted (host died mid-request).
SUBMIT_GRACE = timedelta(minutes=2)
CANCEL_GRACE = timedelta(minutes=2)


@dataclass(frozen=True)
class Action:
    model: str
    action: str  # "failed" | "cancelled" | "resubmitted" | "noted-preemption" | "cancel-resent"
    reason: str


class Reconciler:
    def __init__(self, models: ModelService, evaluations: EvaluationService, backend: JobBackend,
                 heartbeat_timeout_seconds: float, exports: ExportService | None = None) -> None:
        self.models = models
        self.evaluations = evaluations
        self.exports = exports
        self.backend = backend
        self.heartbeat_timeout = timedelta(seconds=heartbeat_timeout_seconds)

    def run_once(self) -> list[Action]:
        actions: list[Action] = []
        self._sweep(self.models.repo.runs.in_flight(), self._reconcile, "model", lambda r: r.name, actions)
        self._sweep(self.evaluations.repo.in_flight(), self._reconcile_evaluation, "evaluation",
                    lambda r: f"{r.model_name}/{r.name}", actions)
        if self.exports is not None:
            self._sweep(self.exports.repo.in_flight(), self._reconcile_export, "export",
                        lambda r: f"{r.model_name}/{r.name}", actions)
        return actions

    @staticmethod
    def _sweep(records: Iterable[R], reconcile: Callable[[R], Action | None], what: str,
               name_of: Callable[[R], str], actions: list[Action]) -> None:
        """Reconcile each run; one run's failure is logged and never stops the others."""
        for record in records:
            try:
                action = reconcile(record)
            except Exception:
                log.exception("reconciling %s %s failed", what, name_of(record))
                continue
            if action is not None:
                log.info("reconciled %s %s: %s (%s)", what, action.model, action.action, action.reason)
                actions.append(action)

    def _reconcile_evaluation(self, record: EvaluationRecord) -> Action | None:
        reason = self._side_run_problem(record, "evaluation")
        if reason is None:
            return None
        error = {"code": EvaluationErrorCode.INTERNAL.value, "message": reason}
        updated = self.evaluations.repo.runs.update(record.model_name, record.name, _failing(record, error))
        return Action(f"{record.model_name}/{record.name}", "failed", reason) if updated else None

    def _reconcile_export(self, record: ExportRecord) -> Action | None:
        assert self.exports is not None
        reason = self._side_run_problem(record, "export")
        if reason is None:
            return None
        error = {"code": EXPORT_FAILED, "message": reason}
        updated = self.exports.repo.runs.update(record.model_name, record.name, _failing(record, error))
        return Action(f"{record.model_name}/exports/{record.name}", "failed", reason) if updated else None

    def _side_run_problem(self, record: EvaluationRecord | ExportRecord, what: str) -> str | None:
        """Why a run of a model (an evaluation, an export: never resubmitted) must end failed, if it must."""
        now = utc_now()
        if record.job_id is None:
            return f"the {what} job was never submitted" if now - record.created > SUBMIT_GRACE else None
        status = self.backend.status(record.job_id)
        if status.state is JobState.NOT_FOUND and self._still_reporting(record, now):
            return None  # the backend lost track of it, but the job itself is alive
        if status.state in (JobState.COMPLETED, JobState.NOT_FOUND):
            return f"the {what} stopped unexpectedly: {status.detail or status.state.value}"
        if status.state is JobState.RUNNING and record.status is RunStatus.RUNNING:
            last_sign = record.heartbeat or record.started or record.updated
            if now - last_sign > self.heartbeat_timeout:
                self.backend.cancel(record.job_id)
                return f"the {what} stopped reporting and was stopped"
        return None

    def _still_reporting(self, record: RunRecord, now) -> bool:
        """The run's own heartbeat is fresh: its job is alive whatever the backend says, and a run
        that is alive and reporting is never failed (it fails once the heartbeat goes stale)."""
        return (record.status is RunStatus.RUNNING and record.heartbeat is not None
                and now - record.heartbeat <= self.heartbeat_timeout)

    # --- one model
    def _reconcile(self, record: ModelRecord) -> Action | None:
        now = utc_now()
        if record.job_id is None:
            if now - record.created > SUBMIT_GRACE:
                return self._fail(record, "the training job was never submitted (the service stopped while "
                                          "starting it); create the model again")
            return None
        status = self.backend.status(record.job_id)
        if record.status is RunStatus.CANCELLING:
            return self._reconcile_cancel(record, status)
        if status.state is JobState.PREEMPTED:
            return self._note_preemption(record, status)
        if status.state is JobState.NOT_FOUND and self._still_reporting(record, now):
            return None  # the backend lost track of it (e.g. a restarted host), but the trainer is alive
        if status.state in (JobState.COMPLETED, JobState.NOT_FOUND):
            # the trainer writes its own outcome before it exits; reaching here means it could not
            if status.state is JobState.NOT_FOUND:
                reason = "the job vanished from the backend" + (f" ({status.detail})" if status.detail else "")
            else:
                reason = status.detail or "the job ended"
            if record.attempt + 1 < MAX_ATTEMPTS and status.state is JobState.COMPLETED:
                return self._resubmit(record, reason)
            return self._fail(record, f"training stopped unexpectedly: {reason}")
        if record.status is RunStatus.RUNNING and status.state is JobState.RUNNING:
            last_sign = record.heartbeat or record.started or record.updated
            if now - last_sign > self.heartbeat_timeout:
                self.backend.cancel(record.job_id)
                return self._fail(record, f"the trainer stopped reporting (no heartbeat for "
                                          f"{int((now - last_sign).total_seconds())} s) and was stopped")
        started = record.started or record.created
        if now - started > timedelta(seconds=record.budget_seconds) + OVERRUN:
            self.backend.cancel(record.job_id)
            return self._fail(record, "training ran past its time budget and was stopped")
        return None

    def _reconcile_cancel(self, record: ModelRecord, status: JobStatus) -> Action | None:
        if status.state in (JobState.COMPLETED, JobState.NOT_FOUND):
            updated = self.models.repo.update(record.name, lambda r: r.with_changes(
                status=RunStatus.CANCELLED, progress=None) if r.status is RunStatus.CANCELLING else None)
            return Action(record.name, "cancelled", status.detail or "the job is gone") if updated else None
        requested = record.cancel_requested or record.updated
        if utc_now() - requested > CANCEL_GRACE:
            self.backend.cancel(record.job_id)
            return Action(record.name, "cancel-resent", "the job is still running")
        return None

    def _fail(self, record: ModelRecord, message: str) -> Action | None:
        error = {"code": TrainingErrorCode.UNKNOWN.value, "message": message}

        def change(r: ModelRecord) -> ModelRecord | None:
            if r.status.is_terminal or r.run_id != record.run_id:
                return None
            if r.status is RunStatus.CANCELLING:
                return r.with_changes(status=RunStatus.CANCELLED, progress=None)
            return r.with_changes(status=RunStatus.FAILED, error=error, progress=None)

        updated = self.models.repo.update(record.name, change)
        return Action(record.name, "failed", message) if updated else None

    def _resubmit(self, record: ModelRecord, reason: str) -> Action | None:
        training = self.models.datasets.find(record.training_dataset)
        test = self.models.datasets.find(record.test_dataset) if record.test_dataset else None
        if training is None or (record.test_dataset and test is None):
            return self._fail(record, f"training stopped unexpectedly ({reason}) and its dataset is gone")
        attempt = record.attempt + 1
        spec = self.models.job_spec(record, training.value, test.value if test else None, attempt=attempt)
        progress = {"phase": "requeued", "percent": (record.progress or {}).get("percent", 0.0),
                    "message": f"restarted from the last checkpoint after: {reason}"}
        self.models.repo.update(record.name, lambda r: r.with_changes(progress=progress, heartbeat=utc_now())
                                if r.run_id == record.run_id and not r.status.is_terminal else None)
        self.models.submit(record, spec)
        return Action(record.name, "resubmitted", reason)

    def _note_preemption(self, record: ModelRecord, status: JobStatus) -> Action | None:
        message = f"the node was preempted; the backend requeued the run ({status.requeues} requeue(s))"
        if (record.progress or {}).get("message") == message:
            return None
        progress = {**(record.progress or {}), "phase": "requeued", "message": message}
        # a requeued run restarts its heartbeat when it starts again
        self.models.repo.update(record.name, lambda r: r.with_changes(progress=progress, heartbeat=utc_now())
                                if r.run_id == record.run_id and not r.status.is_terminal else None)
        return Action(record.name, "noted-preemption", message)


def _failing(record: RunRecord, error: dict) -> Callable[[R], R | None]:
    """The change that ends ``record``'s run failed, unless it ended or was replaced meanwhile."""
    def change(r: R) -> R | None:
        if r.status.is_terminal or r.run_id != record.run_id:
            return None
        return r.with_changes(status=RunStatus.FAILED, error=error, progress=None)

    return change
