"""How a running job reports: status, progress and a heartbeat into its run's Table entity.

A background thread writes at least every ``HEARTBEAT_SECONDS`` (the reconciler declares a run
dead when the heartbeat stops) and reads back whether a cancel was requested, so the job stops
even where no signal reaches it. The reporter knows only the run part of the entity
(``OpaqueRun``): the owner's properties are written back as they were read.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from loupe.jobs.spec import JobSpec
from loupe.runs.record import OpaqueRun, RunStatus
from loupe.runs.table import RunTable, StaleRun
from loupe.storage.clients import Storage
from loupe.storage.entities import utc_now
from loupe.storage.names import EVALUATIONS_TABLE, EXPORTS_TABLE, MODELS_PARTITION, MODELS_TABLE

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0


class RunReporter:
    def __init__(self, table: RunTable[OpaqueRun], partition: str, row: str, run_id: str,
                 heartbeat_seconds: float = HEARTBEAT_SECONDS) -> None:
        self.table, self.partition, self.row, self.run_id = table, partition, row, run_id
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

    @classmethod
    def for_spec(cls, spec: JobSpec, storage: Storage, **kwargs: Any) -> "RunReporter":
        """The reporter of the run ``spec`` belongs to: a model's, an evaluation's or an export's."""
        if spec.mode == "evaluate":
            table, key = EVALUATIONS_TABLE, (spec.model_name, spec.evaluation_name or "")
        elif spec.mode == "export":
            table, key = EXPORTS_TABLE, (spec.model_name, spec.export_key)
        else:
            table, key = MODELS_TABLE, (MODELS_PARTITION, spec.model_name)
        return cls(RunTable(storage.table(table), OpaqueRun), *key, spec.run_id, **kwargs)

    # --- for the job
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

    def record(self) -> OpaqueRun:
        """The run's record; raises StaleRun when it no longer belongs to this run."""
        stored = self.table.find(self.partition, self.row)
        if stored is None or stored.value.run_id != self.run_id:
            raise StaleRun(f"{self.partition}/{self.row}")
        return stored.value

    def start(self) -> None:
        self._mark_running()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def finish(self, status: RunStatus, *, performance: dict | None = None, error: dict | None = None) -> None:
        """Record the outcome, once: a run already ended (by a cancel or the reconciler) stays as it is."""
        seconds = self.elapsed_seconds

        def change(r: OpaqueRun) -> OpaqueRun | None:
            if r.status.is_terminal:
                return None
            final = status
            if r.status is RunStatus.CANCELLING and status is not RunStatus.SUCCEEDED:
                final = RunStatus.CANCELLED  # a cancel was asked for: report it as such
            return r.with_changes(status=final, performance=performance if final is RunStatus.SUCCEEDED else None,
                                  error=error if final is RunStatus.FAILED else None,
                                  run_seconds=r.run_seconds + seconds, heartbeat=utc_now(), progress=None)

        self._update(change)

    # --- the entity
    def _update(self, change) -> OpaqueRun | None:
        return self.table.update(self.partition, self.row, change, run_id=self.run_id)

    def _mark_running(self) -> None:
        def change(r: OpaqueRun) -> OpaqueRun | None:
            if r.status is RunStatus.CANCELLING:
                self.stop_requested.set()
                return None
            if r.status.is_terminal:
                raise StaleRun(f"{self.partition}/{self.row} is already {r.status.value}")
            return r.with_changes(status=RunStatus.RUNNING, started=r.started or utc_now(), heartbeat=utc_now(),
                                  progress={"phase": "starting", "percent": 0.0})

        self._update(change)

    def _loop(self) -> None:
        while not self._closed.wait(self.heartbeat_seconds):
            self._beat()

    def _beat(self) -> None:
        with self._lock:
            progress = dict(self._progress)
        cancelling = False

        def change(r: OpaqueRun) -> OpaqueRun | None:
            nonlocal cancelling
            cancelling = r.status is RunStatus.CANCELLING
            return None if r.status.is_terminal else r.with_changes(heartbeat=utc_now(), progress=progress)

        try:
            self._update(change)
        except StaleRun:
            log.warning("this run no longer owns its entity (deleted or re-created): stopping")
            self.stop_requested.set()
            return
        except Exception:
            log.warning("heartbeat write failed; retrying at the next beat", exc_info=True)
            return
        if cancelling:
            self.stop_requested.set()
