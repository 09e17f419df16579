"""Throttled progress reports: the orchestration writes each one to Table storage, so report
phase changes at once and otherwise at most every REPORT_EVERY seconds."""

from __future__ import annotations

import time

from trainer.context import TrainingContext

REPORT_EVERY = 2.0


class ProgressReporter:
    def __init__(self, ctx: TrainingContext, every: float = REPORT_EVERY) -> None:
        self.ctx = ctx
        self.every = every
        self.last = float("-inf")
        self.phase = ""

    def report(
        self, phase: str, percent: float, message: str = "", *, eta: float | None = None, force: bool = False
    ) -> None:
        now = time.monotonic()
        if force or phase != self.phase or now - self.last >= self.every:
            self.ctx.progress(
                phase,
                round(max(0.0, min(100.0, percent)), 1),
                message,
                None if eta is None else max(0.0, round(eta, 1)),
            )
            self.last, self.phase = now, phase
