"""The job entry point a trainer delegates to: read the JobSpec, then run a training job
(with the trainer's ``fit``), an evaluation job (which needs no trainer) or an export job (with the
trainer's ``package``)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from loupe.jobs.spec import JOB_SPEC_ENV, JobSpec
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


def main(fit: Fit, argv: list[str] | None = None, package: PackageFn | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description="Loupe's trainer: runs one JobSpec.")
    parser.add_argument("--spec", help=f"'<container>/<blob>' or a file (default: ${JOB_SPEC_ENV})")
    args = parser.parse_args(argv)
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
