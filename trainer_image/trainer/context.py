"""What the orchestration hands to the machine-learning code: a deadline, a seed, a progress
sink, a cancellation flag and a checkpoint store (``loupe.runner.training.JobContext`` in a job;
``LocalContext`` in tests, benchmarks and local experiments). Nothing here knows about Azure."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from loupe.runner.checkpoints import CheckpointStore

__all__ = [
    "CheckpointStore",
    "DirectoryCheckpointStore",
    "LocalContext",
    "MemoryCheckpointStore",
    "TrainingContext",
    "check_checkpoint_name",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_checkpoint_name(name: str) -> str:
    """Checkpoint names become blob or file names: keep them boring."""
    if not _NAME.match(name):
        raise ValueError(f"invalid checkpoint name {name!r}: use letters, digits, '.', '_' and '-'")
    return name


class MemoryCheckpointStore:
    """In-process store (tests, benchmarks). Counts writes so tests can see what was saved."""

    def __init__(self) -> None:
        self.items: dict[str, bytes] = {}
        self.saves = 0

    def save(self, name: str, data: bytes) -> None:
        self.items[check_checkpoint_name(name)] = bytes(data)
        self.saves += 1

    def load(self, name: str) -> bytes | None:
        return self.items.get(check_checkpoint_name(name))


class DirectoryCheckpointStore:
    """Checkpoints as files in a local folder; each write is atomic (write, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def save(self, name: str, data: bytes) -> None:
        target = self.root / check_checkpoint_name(name)
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(data)
        partial.replace(target)

    def load(self, name: str) -> bytes | None:
        path = self.root / check_checkpoint_name(name)
        return path.read_bytes() if path.is_file() else None


@runtime_checkable
class TrainingContext(Protocol):
    # time.monotonic() by which training (including export) must have ended
    deadline: float
    seed: int
    checkpoints: CheckpointStore

    def progress(
        self, phase: str, percent: float, message: str = "", eta_seconds: float | None = None
    ) -> None: ...

    def should_stop(self) -> bool: ...


ProgressCallback = Callable[[str, float, str, "float | None"], None]


@dataclass
class LocalContext:
    """A ready-made TrainingContext for tests, benchmarks and local experiments."""

    deadline: float
    seed: int = 0
    checkpoints: CheckpointStore = field(default_factory=MemoryCheckpointStore)
    on_progress: ProgressCallback | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    events: list[tuple[float, str, float, str]] = field(default_factory=list)

    @classmethod
    def with_budget(cls, seconds: float, **kwargs) -> LocalContext:
        return cls(deadline=time.monotonic() + seconds, **kwargs)

    def progress(
        self, phase: str, percent: float, message: str = "", eta_seconds: float | None = None
    ) -> None:
        self.events.append((time.monotonic(), phase, percent, message))
        if self.on_progress is not None:
            self.on_progress(phase, percent, message, eta_seconds)

    def should_stop(self) -> bool:
        return self.stop_event.is_set()
