"""A killed job's working folder (a copy of the customer's images) does not outlive the next job."""
from __future__ import annotations

import os
import subprocess
import sys

from loupe.runner.workdir import OWNER_FILE, make_workdir, sweep


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _folder(root, name: str, owner: int | None):
    folder = root / name
    folder.mkdir()
    (folder / "image.jpg").write_bytes(b"\xff\xd8 customer data")
    if owner is not None:
        (folder / OWNER_FILE).write_text(str(owner))
    return folder


def test_the_next_job_removes_the_folders_of_killed_jobs_only(tmp_path):
    killed = _folder(tmp_path, "loupe-run-killed", _dead_pid())
    killed_eval = _folder(tmp_path, "loupe-eval-killed", _dead_pid())
    running = _folder(tmp_path, "loupe-run-running", os.getppid())  # a live process: another job
    unknown = _folder(tmp_path, "loupe-run-starting", None)  # no owner yet: left alone
    other = _folder(tmp_path, "someone-else", _dead_pid())  # not a job folder
    mine = make_workdir("loupe-run-", str(tmp_path))
    assert not killed.exists() and not killed_eval.exists()
    assert running.exists() and unknown.exists() and other.exists()
    assert (mine / OWNER_FILE).read_text() == str(os.getpid())
    assert oct(mine.stat().st_mode & 0o777) == "0o700"  # private, as mkdtemp makes it
    assert sweep(tmp_path) == []  # its own folder is never swept
