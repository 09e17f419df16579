"""Runs: the one run model shared by models and evaluations (status, run id, job id, attempt,
heartbeat, progress, outcome), its Table codec, read-modify-write, and the one submitter that
hands a run's JobSpec to a job backend. Below the domain packages, above ``loupe.jobs``."""
