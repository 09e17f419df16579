"""The Azure Batch job backend: one Batch job with one container task per trainer run.

The task runs the trainer image's ENTRYPOINT (``python -m trainer``) on the GPU pool. The trainer
finds its JobSpec through ``LOUPE_JOB_SPEC`` and reaches storage with the pool's user-assigned
managed identity: the task carries service URIs and the identity's client id, never keys or SAS.
Batch emits no events, so the reconciler polls ``status``; the trainer reports progress itself.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote, urlsplit

from azure.batch import BatchClient, models
from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.rest import HttpRequest

from loupe.artifacts import LOGS_DIR
from loupe.jobs.backend import JobState, JobStatus
from loupe.jobs.spec import JOB_SPEC_ENV, JobSpec
from loupe.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

# The REST version this module's wire format is written (and tested) against; azure-batch 15.1.0's default.
BATCH_API_VERSION = "2025-06-01"
# Transient Batch failures (408/429/5xx, connection errors) are retried by azure-core's RetryPolicy
# with exponential back-off; 5 tries keep a worst case well inside an HTTP call's 230 s on Azure.
BATCH_RETRY_TOTAL = 5

TRAINER_TASK_ID = "trainer"

# The trainer stops training at its own soft budget; the hard limits below only catch runs that
# hang or never get going, so they are generous rather than tight.
# Task clock (starts when the container starts): dataset download and image checks before
# training, evaluation, ONNX export and artifact uploads after it.
TASK_MARGIN = timedelta(minutes=30)
# Job clock (starts at submission) additionally covers getting a node: autoscale from zero
# evaluates every >= 5 min, a Spot GPU node allocates and boots in ~5-10 min, the multi-GB
# trainer image pulls in minutes; and restarts after a crash retry or a Spot requeue (each
# resumes from a checkpoint but pays start-up again).
STARTUP_MARGIN = timedelta(hours=1)
# How long Batch keeps the task's files on the node after it ends: logs are uploaded to blob
# storage anyway, so one day for on-node debugging is plenty and keeps node disks clean.
TASK_RETENTION = timedelta(days=1)

# stdout.txt/stderr.txt live in the task directory, one level above the working directory
# that output file patterns are relative to.
STD_STREAMS_PATTERN = "../std*.txt"

# terminateReason recorded on jobs that Loupe cancels (shown in the portal and in status details).
CANCEL_REASON = "LoupeCancelled"
# Batch's reason for a job ended by its own maxWallClockTime.
JOB_TIMEOUT_REASON = "MaxWallClockTimeExpiry"

# (status, Batch error code) answers meaning the job is over or on its way out.
_JOB_ENDED = frozenset({(409, "JobCompleted"), (409, "JobBeingTerminated"), (409, "JobBeingDeleted")})


class BatchBackendError(RuntimeError):
    """A Batch call failed (after azure-core's retries of transient faults); names the job."""

    def __init__(self, message: str, *, job_id: str, status_code: int | None = None,
                 error_code: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.status_code = status_code
        self.error_code = error_code


class BatchConfigurationError(ValueError):
    """A setting the Batch backend needs is missing or malformed."""


T = TypeVar("T")


@dataclass(frozen=True)
class _Refused:
    """A Batch error answer the caller expected and handles itself (e.g. 409 JobExists)."""

    status_code: int | None
    code: str | None


def _env_name(field: str) -> str:
    """The environment variable ``Settings`` reads ``field`` from (the trainer uses Settings too)."""
    return f"{Settings.model_config.get('env_prefix', '')}{field}".upper()


def _error_code(exc: AzureError) -> str | None:
    error = getattr(exc, "error", None)
    return getattr(error, "code", None)


def _error_message(exc: AzureError) -> str:
    error = getattr(exc, "error", None)
    message = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    # Batch appends "RequestId:...\nTime:..." lines; the first line is the human part.
    return message.strip().splitlines()[0] if message.strip() else type(exc).__name__


class AzureBatchBackend:
    """Runs each trainer run as one Batch job (id ``spec.job_id``) with one container task."""

    name = "azure-batch"

    def __init__(self, settings: Settings, *, client: BatchClient | None = None,
                 credential: TokenCredential | None = None) -> None:
        if client is None and not settings.batch_account_url:
            raise BatchConfigurationError(
                f"{_env_name('batch_account_url')} must be set to the Batch account URL "
                "(e.g. https://<account>.<region>.batch.azure.com) to use the azure-batch job backend")
        self._settings = settings
        self._injected_client = client
        self._built_client: BatchClient | None = None
        self._credential = credential

    # --- the JobBackend protocol ------------------------------------------------------------

    def submit(self, spec: JobSpec, spec_blob: str) -> str:
        """Create the job and its task; retried submissions of the same run are no-ops."""
        job_id = spec.job_id
        job = self._job_options(spec)
        task = self._task_options(spec, spec_blob)
        # JobExists: a previous submission (or azure-core's retry of this POST after a lost answer)
        # created it. Carry on: the task id is fixed, so Batch itself refuses a second task.
        self._call("create", job_id, lambda: self._client.create_job(job), tolerate={(409, "JobExists")})
        added = self._call("add the trainer task to", job_id, lambda: self._client.create_task(job_id, task),
                           tolerate={(409, "TaskExists"), *_JOB_ENDED})
        if isinstance(added, _Refused) and added.code != "TaskExists":
            return job_id  # submitted earlier and since cancelled or ended: nothing to switch on
        # Batch documents that a job created with onAllTasksComplete=terminatejob and no task yet
        # counts as "all tasks complete" and may end at once: create it with noaction, add the
        # task, then switch. Idempotent, so a retried submission just repeats it.
        self._call("set terminate-on-completion for", job_id,
                   lambda: self._client.update_job(
                       job_id, models.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob")),
                   tolerate=_JOB_ENDED)
        return job_id

    def cancel(self, job_id: str) -> None:
        """Terminate the job: Batch stops the running trainer and schedules nothing more."""
        # The SDK's begin_terminate_job wraps this call in an LRO poller whose thread GETs the
        # job every few seconds until it leaves 'terminating'; nobody here waits for that (the
        # reconciler sees the end through status), so send the same REST call without a poller.
        # Non-2xx answers raise through the client's BatchExceptionPolicy, as for SDK operations.
        request = HttpRequest(
            "POST", f"/jobs/{quote(job_id, safe='')}/terminate",
            params={"api-version": BATCH_API_VERSION},
            json={"terminateReason": CANCEL_REASON},
            headers={"Content-Type": "application/json; odata=minimalmetadata"},
        )
        # unknown (404), or already ending/ended (409): nothing to stop
        self._call("terminate", job_id, lambda: self._client.send_request(request),
                   tolerate={(404, None), *_JOB_ENDED})

    def status(self, job_id: str) -> JobStatus:
        """Batch's view of the run, from the trainer task (and the job where the task can't tell)."""
        task = self._call("read the trainer task of", job_id,
                          lambda: self._client.get_task(job_id, TRAINER_TASK_ID), tolerate={(404, None)})
        if isinstance(task, _Refused):
            detail = ("the job exists but has no trainer task (its submission did not finish)"
                      if task.code == "TaskNotFound" else None)
            return JobStatus(JobState.NOT_FOUND, detail=detail)

        info = task.execution_info
        requeues = info.requeue_count if info is not None and info.requeue_count else 0
        retries = info.retry_count if info is not None and info.retry_count else 0
        state = task.state

        if state == models.BatchTaskState.RUNNING:
            return JobStatus(JobState.RUNNING, requeues=requeues)

        if state == models.BatchTaskState.COMPLETED:
            exit_code = info.exit_code if info is not None else None
            failed = exit_code not in (None, 0) or (
                info is not None and info.result == models.BatchTaskExecutionResult.FAILURE)
            detail = self._failure_detail(job_id, task) if failed else None
            return JobStatus(JobState.COMPLETED, exit_code=exit_code, detail=detail, requeues=requeues)

        # active or preparing: waiting for a node, for its first run or after a retry/requeue.
        # A job terminated before its task ran leaves the task 'active' forever: ask the job.
        job = self._get_job_or_none(job_id)
        ended = (models.BatchJobState.COMPLETED, models.BatchJobState.TERMINATING)
        if job is not None and job.state in ended:
            reason = job.execution_info.termination_reason if job.execution_info else None
            return JobStatus(JobState.COMPLETED, requeues=requeues,
                             detail=f"the job ended before the trainer ran ({reason or 'no reason given'})")
        if requeues > 0:
            # PREEMPTED rather than QUEUED: Batch requeued a run that had started (its Spot node was
            # preempted or removed). The reconciler must not read the trainer's stopped heartbeat
            # as a death, and users see "requeued"; `requeues` lets it count each requeue once.
            return JobStatus(JobState.PREEMPTED, requeues=requeues,
                             detail=f"requeued by Batch after its node was preempted or removed "
                                    f"({requeues}x); waiting for a node")
        if retries > 0:
            limit = task.constraints.max_task_retry_count if task.constraints else None
            of = f" of {limit}" if limit is not None else ""
            return JobStatus(JobState.QUEUED,
                             detail=f"waiting to retry after a failed run (retry {retries}{of})")
        return JobStatus(JobState.QUEUED)

    # --- request bodies -----------------------------------------------------------------------

    def _job_options(self, spec: JobSpec) -> models.BatchJobCreateOptions:
        return models.BatchJobCreateOptions(
            id=spec.job_id,
            display_name=f"Loupe {spec.mode} {spec.model_name}"[:1024],
            pool_info=models.BatchPoolInfo(pool_id=self._settings.batch_pool_id),
            constraints=models.BatchJobConstraints(
                max_wall_clock_time=self._budget(spec) + TASK_MARGIN + STARTUP_MARGIN),
            # switched to terminatejob once the task is in (see submit)
            all_tasks_complete_mode="noaction",
            metadata=[
                models.BatchMetadataItem(name="loupe-model", value=spec.model_name),
                models.BatchMetadataItem(name="loupe-run-id", value=spec.run_id),
                models.BatchMetadataItem(name="loupe-mode", value=spec.mode),
            ],
        )

    def _task_options(self, spec: JobSpec, spec_blob: str) -> models.BatchTaskCreateOptions:
        s = self._settings
        image = self._required("batch_trainer_image")
        registry = self._required("batch_registry_server")
        node_identity = models.BatchNodeIdentityReference(
            resource_id=self._required("batch_node_identity_resource_id"))
        if not spec_blob or spec_blob.startswith("/"):
            raise ValueError(
                f"spec_blob must be a blob name inside the models container, got {spec_blob!r}")
        logs_url = f"{self._blob_service_uri()}/{spec.output.container}"
        logs_path = f"{spec.output.blob(LOGS_DIR)}{spec.job_id}"
        return models.BatchTaskCreateOptions(
            id=TRAINER_TASK_ID,
            display_name=f"python -m trainer ({spec.mode} {spec.model_name})"[:1024],
            command_line="",  # empty: the image's ENTRYPOINT (python -m trainer) runs
            container_settings=models.BatchTaskContainerSettings(
                image_name=image,
                container_run_options=s.batch_container_run_options,
                registry=models.ContainerRegistryReference(
                    registry_server=registry, identity_reference=node_identity),
                # keep the image's WORKDIR so `python -m trainer` resolves the package as built;
                # $AZ_BATCH_TASK_WORKING_DIR is still mapped in for scratch space.
                working_directory="containerImageDefault",
            ),
            environment_settings=[models.EnvironmentSetting(name=k, value=v)
                                  for k, v in self._environment(spec_blob).items()],
            constraints=models.BatchTaskConstraints(
                max_wall_clock_time=self._budget(spec) + TASK_MARGIN,
                retention_time=TASK_RETENTION,
                # crash retries resume from the last checkpoint; Spot requeues don't count here
                max_task_retry_count=s.batch_max_task_retries,
            ),
            output_files=[
                models.OutputFile(
                    file_pattern=STD_STREAMS_PATTERN,
                    destination=models.OutputFileDestination(
                        container=models.OutputFileBlobContainerDestination(
                            container_url=logs_url, path=logs_path, identity_reference=node_identity)),
                    upload_options=models.OutputFileUploadConfiguration(upload_condition="taskcompletion"),
                ),
            ],
        )

    def _environment(self, spec_blob: str) -> dict[str, str]:
        s = self._settings
        client_id = self._required("batch_node_identity_client_id")
        trainer = {}  # the trainer's own settings; the weights folders are the image's, not the host's
        for name in ("trainer_threads", "detector_cpu_max_iterations"):
            if getattr(s, name) is not None:
                trainer[_env_name(name)] = str(getattr(s, name))
        return {
            JOB_SPEC_ENV: f"{s.models_container}/{spec_blob}",
            _env_name("storage_blob_uri"): self._blob_service_uri(),
            _env_name("storage_table_uri"): self._service_uri("storage_table_uri"),
            _env_name("models_container"): s.models_container,
            _env_name("datasets_container"): s.datasets_container,
            _env_name("customvision_container"): s.customvision_container,
            # the trainer applies the same image-host policy as dataset registration
            _env_name("allowed_storage_hosts"): ",".join(s.allowed_storage_hosts),
            _env_name("allow_any_image_host"): "true" if s.allow_any_image_host else "false",
            # the node's user-assigned identity: Loupe's settings and azure-identity both find it
            _env_name("managed_identity_client_id"): client_id,
            "AZURE_CLIENT_ID": client_id,
            **trainer,
        }

    @staticmethod
    def _budget(spec: JobSpec) -> timedelta:
        return timedelta(seconds=math.ceil(spec.budget_seconds))

    def shutdown(self) -> None:
        """Close the client this backend made (if any); submitted jobs keep running on the pool."""
        client, self._built_client = self._built_client, None
        if client is not None:
            client.close()

    # --- helpers --------------------------------------------------------------------------------

    @property
    def _client(self) -> BatchClient:
        if self._injected_client is not None:
            return self._injected_client
        if self._built_client is None:
            self._built_client = self._new_client()
        return self._built_client

    def _new_client(self) -> BatchClient:
        credential = self._credential
        if credential is None:
            # imported here: azure-identity is slow to import and Functions must start in 30 s
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential(
                managed_identity_client_id=self._settings.managed_identity_client_id)
        # BatchClient asks for the https://batch.core.windows.net//.default scope itself.
        return BatchClient(self._settings.batch_account_url, credential,  # type: ignore[arg-type]
                           api_version=BATCH_API_VERSION, retry_total=BATCH_RETRY_TOTAL)

    def _required(self, field: str) -> str:
        value = getattr(self._settings, field, None)
        if not value:
            raise BatchConfigurationError(
                f"{_env_name(field)} must be set to submit training jobs to Azure Batch")
        return str(value)

    def _service_uri(self, field: str) -> str:
        uri = self._required(field).rstrip("/")
        parts = urlsplit(uri)
        if parts.scheme != "https" or not parts.netloc or parts.query or parts.path not in ("", "/"):
            raise BatchConfigurationError(
                f"{_env_name(field)} must be a plain https service URI such as "
                f"https://<account>.blob.core.windows.net (no path, no SAS), got {uri!r}")
        return uri

    def _blob_service_uri(self) -> str:
        return self._service_uri("storage_blob_uri")

    def _call(self, action: str, job_id: str, call: Callable[[], T],
              tolerate: Collection[tuple[int, str | None]] = ()) -> T | _Refused:
        """Run one Batch call: its result, or _Refused for an answer listed in ``tolerate``
        ((status, Batch error code); code None: any code). Anything else raises BatchBackendError."""
        try:
            return call()
        except HttpResponseError as exc:
            code = _error_code(exc)
            if (exc.status_code, code) in tolerate or (exc.status_code, None) in tolerate:
                return _Refused(exc.status_code, code)
            raise self._wrap(action, job_id, exc) from exc
        except AzureError as exc:
            raise self._wrap(action, job_id, exc) from exc

    def _get_job_or_none(self, job_id: str) -> models.BatchJob | None:
        job = self._call("read", job_id, lambda: self._client.get_job(job_id), tolerate={(404, None)})
        return None if isinstance(job, _Refused) else job

    def _failure_detail(self, job_id: str, task: models.BatchTask) -> str:
        """Why the trainer task ended badly, in words for model.error.message."""
        info = task.execution_info
        parts: list[str] = []
        failure = info.failure_info if info is not None else None
        if failure is not None:
            text = f"{failure.code or failure.category}: {failure.message or 'no message'}"
            extra = [f"{d.name}={d.value}" for d in (failure.details or []) if d.name or d.value]
            parts.append(text + (f" ({'; '.join(extra)})" if extra else ""))
        elif info is not None and info.exit_code not in (None, 0):
            parts.append(f"the trainer exited with code {info.exit_code}")
        limit = task.constraints.max_wall_clock_time if task.constraints else None
        if limit is not None and info is not None and _ran_for(info.start_time, info.end_time) >= limit:
            parts.append(f"max wall clock time of {limit} exceeded")
        job = self._get_job_or_none(job_id)
        reason = job.execution_info.termination_reason if job is not None and job.execution_info else None
        if reason == JOB_TIMEOUT_REASON:
            parts.append("the job's max wall clock time was exceeded")
        elif reason == CANCEL_REASON:
            parts.append("cancelled")
        return "; ".join(parts) or "the trainer task failed without details from Batch"

    def _wrap(self, action: str, job_id: str, exc: AzureError) -> BatchBackendError:
        status_code = getattr(exc, "status_code", None)
        code = _error_code(exc)
        head = f"Azure Batch could not {action} job '{job_id}'"
        if status_code is not None:
            head += f": HTTP {status_code}" + (f" {code}" if code else "")
        message = f"{head}: {_error_message(exc)}"
        if status_code in (401, 403):
            message += (" (the caller's identity needs the 'Azure Batch Job Submitter' role on the Batch"
                        f" account {self._settings.batch_account_url}, which must allow Entra ID auth)")
        return BatchBackendError(message, job_id=job_id, status_code=status_code, error_code=code)


def _ran_for(start: datetime | None, end: datetime | None) -> timedelta:
    if start is None or end is None:
        return timedelta(0)
    return end - start


__all__ = ["AzureBatchBackend", "BatchBackendError", "BatchConfigurationError"]
