"""Timer: reconcile runs in flight with their job backend (see loupe.reconcile)."""
from __future__ import annotations

import logging

import azure.functions as func

from loupe.settings import get_settings, reconcile_schedule
from loupe.storage.names import RECONCILE_FUNCTION_NAME

bp = func.Blueprint()
log = logging.getLogger(__name__)


# the cadence is the one setting the local host's reconciler thread uses too
@bp.function_name(RECONCILE_FUNCTION_NAME)
@bp.timer_trigger(arg_name="timer", schedule=reconcile_schedule(get_settings().reconcile_interval_seconds),
                  run_on_startup=False, use_monitor=True)
def reconcile_jobs(timer: func.TimerRequest) -> None:
    from loupe.services import default_services

    actions = default_services().reconciler.run_once()
    log.info("reconciled %d run(s)%s", len(actions), " (timer was past due)" if timer.past_due else "")
