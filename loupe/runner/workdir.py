"""A job's private working folder: the only copy of the customer's images outside their storage.

It is removed however the job ends - except when the process is killed outright (SIGKILL, OOM),
which no code inside it survives. So each folder names its owner (``owner.pid``), and every job
that starts removes the folders of owners that are no longer alive: a killed run's images do not
stay on the machine after the next job.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

PREFIXES = ("loupe-run-", "loupe-eval-", "loupe-export-")
OWNER_FILE = "owner.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _owner(folder: Path) -> int | None:
    try:
        return int((folder / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None


def sweep(root: Path) -> list[Path]:
    """Remove job folders under ``root`` whose owner process is gone; returns what was removed.
    A folder without a readable owner is left alone (it may be starting, or not Loupe's)."""
    removed = []
    for folder in root.iterdir() if root.is_dir() else []:
        if not folder.name.startswith(PREFIXES) or not folder.is_dir():
            continue
        pid = _owner(folder)
        if pid is None or pid == os.getpid() or _alive(pid):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
        log.info("removed %s, left behind by a job that was killed (pid %d)", folder, pid)
    return removed


def make_workdir(prefix: str, scratch_root: str | None) -> Path:
    """A new private folder (mode 0700) owned by this process, after sweeping killed jobs' folders."""
    root = Path(scratch_root or tempfile.gettempdir())
    try:
        sweep(root)
    except OSError:
        log.warning("could not sweep %s for folders of killed jobs", root, exc_info=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    (folder / OWNER_FILE).write_text(str(os.getpid()))
    return folder
