"""A daemon thread calling a function every few seconds (the local stand-in for a timer trigger)."""
from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, interval: float, function: Callable[[], object]) -> None:
        self.interval = interval
        self.function = function
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.function()
            except Exception:
                log.exception("%s failed; it runs again in %.0f s", self._thread.name, self.interval)

    def start(self) -> "Periodic":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
