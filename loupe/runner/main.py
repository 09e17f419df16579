"""The job entry point a trainer delegates to: read the JobSpec, then run a training job
(with the trainer's ``fit``), an evaluation job (which needs no trainer) or an export job (with the
trainer's ``package``)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from loupe.jobs.spec import JOB_SPEC_ENV, JobSpec, StandbyAssignment
from loupe.runner.training import Fit, run_training
from loupe.settings import get_settings
from loupe.storage.clients import Storage

if TYPE_CHECKING:
    from loupe.runner.export import PackageFn

log = logging.getLogger("trainer")

# Azure Batch gives each task a working folder on the node's data disk; scratch goes there.
SCRATCH_ENV = "AZ_BATCH_TASK_WORKING_DIR"


def read_spec(storage: Storage, reference: str) -> JobSpec:
    """``reference`` is "<container>/<blob>" in Loupe's storage, or a local file path."""
    path = Path(reference)
    if path.is_file():
        return JobSpec.model_validate_json(path.read_bytes())
    container, _, blob = reference.partition("/")
    return JobSpec.model_validate_json(storage.container(container).download_blob(blob).readall())


def _await_assignment(standby_log: Path, warm: Callable[[], None] | None) -> str | None:
    """A standby trainer (docs/training.md#time-to-model): do the slow imports, then wait for the
    host's one line on stdin. Its job's spec reference, with this process's output moved to the
    job's log (what the standby printed first included); None when the host went away first."""
    if warm is not None:
        warm()
    line = sys.stdin.readline()
    if not line.strip():
        standby_log.unlink(missing_ok=True)
        return None
    assignment = StandbyAssignment.model_validate_json(line)
    fd = os.open(assignment.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, standby_log.read_bytes())
    except OSError:
        pass  # the standby's own output is a nicety; the job's log is what matters
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    standby_log.unlink(missing_ok=True)
    return assignment.spec


def main(fit: Fit, argv: list[str] | None = None, package: PackageFn | None = None,
         warm: Callable[[], None] | None = None) -> int:
    """Run one job. ``warm``: the trainer's slow imports, done first by a standby trainer."""
    parser = argparse.ArgumentParser(prog="python -m trainer", description="Loupe's trainer: runs one JobSpec.")
    parser.add_argument("--spec", help=f"'<container>/<blob>' or a file (default: ${JOB_SPEC_ENV})")
    parser.add_argument("--standby", metavar="LOG", type=Path,
                        help="import first, then read the job from stdin (a local host's warm trainer; LOG: "
                             "this process's output until then)")
    args = parser.parse_args(argv)
    if args.standby is not None:
        assigned = _await_assignment(args.standby, warm)
        if assigned is None:
            return 0
        args.spec = assigned
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("azure", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    reference = args.spec or os.environ.get(JOB_SPEC_ENV)
    if not reference:
        parser.error(f"no job spec: pass --spec or set {JOB_SPEC_ENV}")
    storage = Storage(get_settings())
    spec = read_spec(storage, reference)
    log.info("job %s: %s model %s (%s), budget %.0f s", spec.job_id, spec.mode, spec.model_name,
             spec.model_kind.value, spec.budget_seconds)
    scratch = os.environ.get(SCRATCH_ENV) or None
    if spec.mode == "train":
        return run_training(spec, storage, fit, scratch_root=scratch)
    if spec.mode == "export":
        from loupe.runner.export import run_export

        if package is None:
            parser.error("this trainer builds no export packages")
        return run_export(spec, storage, package, scratch_root=scratch)
    from loupe.runner.evaluation import run_evaluation  # a training job need not import it

    return run_evaluation(spec, storage, scratch_root=scratch)
