"""A progress bar on stderr: tqdm when it is installed, else a line every few percent."""
from __future__ import annotations

import sys
from typing import Protocol


class Progress(Protocol):
    def update(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


class _Lines:
    """``name: done/total`` on stderr each time another tenth (or the end) is reached."""

    def __init__(self, total: int, name: str) -> None:
        self.total, self.name, self.done, self._shown = total, name, 0, -1

    def update(self, n: int = 1) -> None:
        self.done += n
        step = self.done * 10 // max(self.total, 1)
        if step != self._shown or self.done == self.total:
            self._shown = step
            print(f"{self.name}: {self.done}/{self.total} images", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress(total: int, name: str, enabled: bool = True) -> Progress:
    if not enabled:
        return _Silent()
    try:
        from tqdm import tqdm
    except ImportError:
        return _Lines(total, name)
    return tqdm(total=total, desc=name, unit="image", file=sys.stderr, leave=True, dynamic_ncols=True)
