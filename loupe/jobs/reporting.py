"""How a running trainer reports: status, progress and a heartbeat into its Table entity.

A background thread writes at least every ``HEARTBEAT_SECONDS`` (the reconciler declares a run
dead when the heartbeat stops) and reads back whether a cancel was requested, so the trainer
stops even where no signal reaches it.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from loupe.enums import EvaluationStatus, ModelStatus
from loupe.evaluations.repository import EvaluationRepository
from loupe.models.record import ModelRecord
from loupe.models.repository import ModelRepository, StaleRun
from loupe.storage.entities import utc_now

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0


class RunReporter:
    """Base: progress bookkeeping, the heartbeat thread and the stop flag."""

    def __init__(self, heartbeat_seconds: float = HEARTBEAT_SECONDS) -> None:
        self.heartbeat_seconds = heartbeat_seconds
        self.stop_requested = threading.Event()
        self._progress: dict[str, Any] = {"phase": "starting", "percent": 0.0}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_monotonic = time.monotonic()
        # seconds spent per reported phase (benchmarks and the training report show the shares)
        self.phase_seconds: dict[str, float] = {}
        self._phase_started = self.started_monotonic

    # --- for the trainer
    def progress(self, phase: str, percent: float, message: str = "", eta_seconds: float | None = None) -> None:
        entry: dict[str, Any] = {"phase": phase, "percent": round(max(0.0, min(100.0, percent)), 1)}
        if message:
            entry["message"] = message[:500]
        if eta_seconds is not None:
            entry["etaSeconds"] = round(max(0.0, eta_seconds), 1)
        with self._lock:
            changed_phase = entry["phase"] != self._progress.get("phase")
            if changed_phase:
                self._close_phase()
            self._progress = entry
        if changed_phase:
            self._beat()

    def should_stop(self) -> bool:
        return self.stop_requested.is_set()

    def _close_phase(self) -> None:
        now = time.monotonic()
        phase = self._progress.get("phase", "starting")
        self.phase_seconds[phase] = self.phase_seconds.get(phase, 0.0) + now - self._phase_started
        self._phase_started = now

    def phase_durations(self) -> dict[str, float]:
        """Seconds per phase so far, the current phase included."""
        with self._lock:
            self._close_phase()
            return {phase: round(seconds, 3) for phase, seconds in self.phase_seconds.items()}

    @property
    def elapsed_seconds(self) -> float:
        return time.monotonic() - self.started_monotonic

    def start(self) -> None:
        self._mark_running()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # --- the heartbeat
    def _loop(self) -> None:
        while not self._closed.wait(self.heartbeat_seconds):
            self._beat()

    def _beat(self) -> None:
        with self._lock:
            progress = dict(self._progress)
        try:
            if self._write_heartbeat(progress):
                self.stop_requested.set()
        except StaleRun:
            log.warning("this run no longer owns its entity (deleted or re-created): stopping")
            self.stop_requested.set()
        except Exception:
            log.warning("heartbeat write failed; retrying at the next beat", exc_info=True)

    # --- what subclasses write
    def _mark_running(self) -> None:
        raise NotImplementedError

    def _write_heartbeat(self, progress: dict[str, Any]) -> bool:
        """Write heartbeat + progress; return True when the run should stop (cancel requested)."""
        raise NotImplementedError


class ModelRunReporter(RunReporter):
    def __init__(self, repo: ModelRepository, name: str, run_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repo, self.name, self.run_id = repo, name, run_id

    def _update(self, change) -> ModelRecord | None:
        return self.repo.update(self.name, change, run_id=self.run_id)

    def record(self) -> ModelRecord:
        stored = self.repo.find(self.name)
        if stored is None or stored.value.run_id != self.run_id:
            raise StaleRun(self.name)
        return stored.value

    def _mark_running(self) -> None:
        def change(r: ModelRecord) -> ModelRecord | None:
            if r.status is ModelStatus.CANCELLING:
                self.stop_requested.set()
                return None
            if r.status.is_terminal:
                raise StaleRun(f"{self.name} is already {r.status.value}")
            return r.with_changes(status=ModelStatus.TRAINING, started=r.started or utc_now(), heartbeat=utc_now(),
                                  progress={"phase": "starting", "percent": 0.0})

        self._update(change)

    def _write_heartbeat(self, progress: dict[str, Any]) -> bool:
        cancelling = False

        def change(r: ModelRecord) -> ModelRecord | None:
            nonlocal cancelling
            cancelling = r.status is ModelStatus.CANCELLING
            if r.status.is_terminal:
                return None
            return r.with_changes(heartbeat=utc_now(), progress=progress)

        self._update(change)
        return cancelling

    def finish(self, status: ModelStatus, *, performance: dict | None = None, error: dict | None = None) -> None:
        seconds = self.elapsed_seconds

        def change(r: ModelRecord) -> ModelRecord | None:
            if r.status.is_terminal:
                return None
            final = status
            if r.status is ModelStatus.CANCELLING and status is not ModelStatus.SUCCEEDED:
                final = ModelStatus.CANCELLED  # a cancel was asked for: report it as such
            return r.with_changes(status=final, performance=performance if final is ModelStatus.SUCCEEDED else None,
                                  error=error if final is ModelStatus.FAILED else None,
                                  training_seconds=r.training_seconds + seconds, heartbeat=utc_now(),
                                  progress=None)

        self._update(change)





class EvaluationRunReporter(RunReporter):
    def __init__(self, repo: EvaluationRepository, model: str, name: str, run_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repo, self.model, self.name, self.run_id = repo, model, name, run_id

    def _update(self, change):
        return self.repo.update(self.model, self.name, change, run_id=self.run_id)

    def _mark_running(self) -> None:
        def change(r):
            if r.status.is_terminal:
                raise StaleRun(f"{self.model}/{self.name} is already {r.status.value}")
            return r.with_changes(status=EvaluationStatus.RUNNING, started=r.started or utc_now(),
                                  heartbeat=utc_now(), progress={"phase": "starting", "percent": 0.0})

        self._update(change)

    def _write_heartbeat(self, progress: dict[str, Any]) -> bool:
        self._update(lambda r: None if r.status.is_terminal else r.with_changes(heartbeat=utc_now(), progress=progress))
        return False

    def finish(self, status: EvaluationStatus, *, performance: dict | None = None, error: dict | None = None) -> None:
        self._update(lambda r: None if r.status.is_terminal else r.with_changes(
            status=status, performance=performance, error=error, heartbeat=utc_now(), progress=None))
