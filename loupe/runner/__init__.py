"""The code that runs inside a job (``python -m trainer``, locally or in a Batch container):
reading the JobSpec, reporting status, heartbeat and progress into the run's record, downloading
a dataset into a working folder, checkpoints in blob storage, running an evaluation, and the
orchestration around a trainer's ``fit``.

The trainer imports from the core only this package, the job contract (``loupe.jobs.spec``) and
leaf modules; this package imports no domain package (datasets, models, evaluations)."""
