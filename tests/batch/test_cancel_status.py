"""Wire tests of AzureBatchBackend.cancel and .status against canned Batch answers."""
from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError

from loupe.jobs.azure_batch import BatchBackendError
from loupe.jobs.backend import JobState, JobStatus
from tests.batch.fakes import ACCOUNT_URL, TOKEN, batch_error

JOB_ID = "loupe-train-bird-species-v2-d5426b310bef"
TASK_PATH = f"/jobs/{JOB_ID}/tasks/trainer"
JOB_PATH = f"/jobs/{JOB_ID}"
FORBIDDEN = batch_error("AuthorizationFailure", "This request is not authorized to perform this operation.")


def task_body(state: str, *, execution: dict[str, Any] | None = None,
              previous: str | None = None) -> dict[str, Any]:
    """A GET /jobs/{job}/tasks/trainer answer, shaped like the service's."""
    body: dict[str, Any] = {
        "odata.metadata": f"{ACCOUNT_URL}/$metadata#tasks/@Element",
        "id": "trainer",
        "url": f"{ACCOUNT_URL}{TASK_PATH}",
        "eTag": "0x8DE1A2B3C4D5E6F",
        "creationTime": "2026-11-20T10:00:05.000Z",
        "lastModified": "2026-11-20T10:00:05.000Z",
        "state": state,
        "stateTransitionTime": "2026-11-20T10:20:00.000Z",
        "commandLine": "",
        "containerSettings": {"imageName": "crloupeprod.azurecr.io/loupe-trainer:0.1.0",
                              "workingDirectory": "containerImageDefault"},
        "constraints": {"maxWallClockTime": "PT2H", "retentionTime": "P1D", "maxTaskRetryCount": 3},
        "requiredSlots": 1,
    }
    if previous:
        body["previousState"] = previous
        body["previousStateTransitionTime"] = "2026-11-20T10:12:00.000Z"
    if execution is not None:
        body["executionInfo"] = {"retryCount": 0, "requeueCount": 0, **execution}
    return body


def job_body(state: str, reason: str | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {"startTime": "2026-11-20T10:00:04.000Z", "poolId": "loupe-gpu"}
    if reason:
        info.update(endTime="2026-11-20T12:00:04.000Z", terminateReason=reason)
    return {
        "id": JOB_ID, "url": f"{ACCOUNT_URL}{JOB_PATH}", "eTag": "0x8DE1A2B3C4D5E60",
        "lastModified": "2026-11-20T10:00:04.000Z", "creationTime": "2026-11-20T10:00:04.000Z",
        "state": state, "stateTransitionTime": "2026-11-20T10:00:04.000Z", "priority": 0,
        "poolInfo": {"poolId": "loupe-gpu"}, "onAllTasksComplete": "terminatejob",
        "onTaskFailure": "noaction", "executionInfo": info,
    }


def _paths(transport) -> list[tuple[str, str]]:
    return [(s.method, s.path) for s in transport.sent]


# --- cancel --------------------------------------------------------------------------------------

def test_cancel_terminates_the_job(backend, transport):
    transport.answers = [(202, None)]

    backend.cancel(JOB_ID)

    (sent,) = transport.sent
    assert (sent.method, sent.path) == ("POST", f"{JOB_PATH}/terminate")
    assert sent.query == {"api-version": ["2025-06-01"]}
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["content-type"] == "application/json; odata=minimalmetadata"
    assert sent.body == {"terminateReason": "LoupeCancelled"}


@pytest.mark.parametrize("status, code, message", [
    (404, "JobNotFound", "The specified job does not exist."),
    (409, "JobCompleted", "The specified job is already in a completed state."),
    (409, "JobBeingTerminated", "The specified job is being terminated."),
])
def test_cancel_of_an_unknown_or_ended_job_is_a_no_op(backend, transport, status, code, message):
    transport.answers = [(status, batch_error(code, message))]

    backend.cancel(JOB_ID)

    assert _paths(transport) == [("POST", f"{JOB_PATH}/terminate")]


def test_cancel_refused_names_the_job(backend, transport):
    transport.answers = [(403, FORBIDDEN)]

    with pytest.raises(BatchBackendError,
                       match=rf"could not terminate job '{JOB_ID}': HTTP 403 AuthorizationFailure"):
        backend.cancel(JOB_ID)


# --- status ---------------------------------------------------------------------------------------

def test_status_reads_the_trainer_task(backend, transport):
    transport.answers = [(200, task_body("running", execution={"startTime": "2026-11-20T10:20:00.000Z"},
                                         previous="preparing"))]

    assert backend.status(JOB_ID) == JobStatus(JobState.RUNNING)

    (sent,) = transport.sent
    assert (sent.method, sent.path, sent.query) == ("GET", TASK_PATH, {"api-version": ["2025-06-01"]})
    assert sent.body is None


@pytest.mark.parametrize("state", ["active", "preparing"])
def test_waiting_task_in_an_active_job_is_queued(backend, transport, state):
    transport.answers = [(200, task_body(state)), (200, job_body("active"))]

    assert backend.status(JOB_ID) == JobStatus(JobState.QUEUED)
    assert _paths(transport) == [("GET", TASK_PATH), ("GET", JOB_PATH)]


def test_requeued_task_waiting_for_a_node_is_preempted(backend, transport):
    execution = {"requeueCount": 2, "lastRequeueTime": "2026-11-20T10:50:00.000Z",
                 "startTime": "2026-11-20T10:40:00.000Z"}
    transport.answers = [(200, task_body("active", execution=execution, previous="running")),
                         (200, job_body("active"))]

    status = backend.status(JOB_ID)

    assert (status.state, status.requeues, status.exit_code) == (JobState.PREEMPTED, 2, None)
    assert "preempted" in status.detail and "2x" in status.detail


def test_requeued_task_running_again_is_running_with_its_requeues(backend, transport):
    execution = {"requeueCount": 1, "lastRequeueTime": "2026-11-20T10:50:00.000Z",
                 "startTime": "2026-11-20T11:05:00.000Z"}
    transport.answers = [(200, task_body("running", execution=execution))]

    assert backend.status(JOB_ID) == JobStatus(JobState.RUNNING, requeues=1)


def test_task_waiting_for_a_crash_retry_is_queued(backend, transport):
    execution = {"retryCount": 1, "lastRetryTime": "2026-11-20T10:40:00.000Z",
                 "startTime": "2026-11-20T10:40:00.000Z"}
    transport.answers = [(200, task_body("active", execution=execution, previous="running")),
                         (200, job_body("active"))]

    assert backend.status(JOB_ID) == JobStatus(
        JobState.QUEUED, detail="waiting to retry after a failed run (retry 1 of 3)")


def test_task_of_a_job_terminated_before_it_ran_is_completed(backend, transport):
    transport.answers = [(200, task_body("active")), (200, job_body("completed", reason="LoupeCancelled"))]

    assert backend.status(JOB_ID) == JobStatus(
        JobState.COMPLETED, detail="the job ended before the trainer ran (LoupeCancelled)")


def test_successful_task_is_completed_with_exit_code_zero(backend, transport):
    execution = {"startTime": "2026-11-20T10:20:00.000Z", "endTime": "2026-11-20T11:48:10.000Z",
                 "exitCode": 0, "result": "success"}
    transport.answers = [(200, task_body("completed", execution=execution, previous="running"))]

    assert backend.status(JOB_ID) == JobStatus(JobState.COMPLETED, exit_code=0)
    assert len(transport.sent) == 1  # nothing more to ask about a clean exit


def test_crashed_task_reports_exit_code_and_failure_info(backend, transport):
    execution = {
        "startTime": "2026-11-20T10:20:00.000Z", "endTime": "2026-11-20T10:31:00.000Z",
        "exitCode": 137, "result": "failure", "retryCount": 3,
        "failureInfo": {"category": "usererror", "code": "FailureExitCode",
                        "message": "The task exited with an exit code representing a failure",
                        "details": [{"name": "Message", "value": "The task exited with exit code 137"}]},
    }
    transport.answers = [(200, task_body("completed", execution=execution)),
                         (200, job_body("completed", reason="AllTasksComplete"))]

    assert backend.status(JOB_ID) == JobStatus(
        JobState.COMPLETED, exit_code=137,
        detail="FailureExitCode: The task exited with an exit code representing a failure "
               "(Message=The task exited with exit code 137)")
    assert _paths(transport) == [("GET", TASK_PATH), ("GET", JOB_PATH)]


def test_task_killed_at_its_wall_clock_limit_says_so(backend, transport):
    execution = {
        "startTime": "2026-11-20T10:20:00.000Z", "endTime": "2026-11-20T12:20:00.500Z",
        "exitCode": 137, "result": "failure",
        "failureInfo": {"category": "servererror", "code": "TaskEnded",
                        "message": "Task Was Ended by User Request"},
    }
    transport.answers = [(200, task_body("completed", execution=execution)),
                         (200, job_body("completed", reason="AllTasksComplete"))]

    status = backend.status(JOB_ID)

    assert (status.state, status.exit_code) == (JobState.COMPLETED, 137)
    assert status.detail == (
        "TaskEnded: Task Was Ended by User Request; max wall clock time of 2:00:00 exceeded")


def test_task_ended_by_the_jobs_wall_clock_limit_says_so(backend, transport):
    execution = {
        "startTime": "2026-11-20T11:50:00.000Z", "endTime": "2026-11-20T13:00:04.000Z",
        "exitCode": 143, "result": "failure",
        "failureInfo": {"category": "servererror", "code": "TaskEnded",
                        "message": "Task Was Ended by User Request"},
    }
    transport.answers = [(200, task_body("completed", execution=execution)),
                         (200, job_body("completed", reason="MaxWallClockTimeExpiry"))]

    assert backend.status(JOB_ID).detail == (
        "TaskEnded: Task Was Ended by User Request; the job's max wall clock time was exceeded")


PULL_ERROR = "unauthorized: authentication required for crloupeprod.azurecr.io"


def test_image_pull_failure_carries_batch_words(backend, transport):
    # A container that never started: no exit code, the reason is in failureInfo.
    execution = {
        "startTime": "2026-11-20T10:20:00.000Z", "endTime": "2026-11-20T10:21:30.000Z", "result": "failure",
        "failureInfo": {"category": "usererror", "code": "ContainerImagePullFailed",
                        "message": "The container image could not be pulled",
                        "details": [{"name": "Message", "value": PULL_ERROR}]},
    }
    transport.answers = [(200, task_body("completed", execution=execution)),
                         (200, job_body("completed", reason="AllTasksComplete"))]

    assert backend.status(JOB_ID) == JobStatus(
        JobState.COMPLETED, exit_code=None,
        detail="ContainerImagePullFailed: The container image could not be pulled "
               f"(Message={PULL_ERROR})")


def test_cancelled_running_task_says_cancelled(backend, transport):
    execution = {"startTime": "2026-11-20T10:20:00.000Z", "endTime": "2026-11-20T10:25:00.000Z",
                 "exitCode": 143, "result": "failure",
                 "failureInfo": {"category": "usererror", "code": "TaskEnded",
                                 "message": "Task Was Ended by User Request"}}
    transport.answers = [(200, task_body("completed", execution=execution)),
                         (200, job_body("completed", reason="LoupeCancelled"))]

    assert backend.status(JOB_ID).detail == "TaskEnded: Task Was Ended by User Request; cancelled"


@pytest.mark.parametrize("code, detail", [
    ("JobNotFound", None),
    ("TaskNotFound", "the job exists but has no trainer task (its submission did not finish)"),
])
def test_missing_job_or_task_is_not_found(backend, transport, code, detail):
    transport.answers = [(404, batch_error(code, "The specified resource does not exist."))]

    assert backend.status(JOB_ID) == JobStatus(JobState.NOT_FOUND, detail=detail)
    assert len(transport.sent) == 1  # 404 is not retried


def test_status_refused_names_the_job(backend, transport):
    transport.answers = [(403, FORBIDDEN)]

    with pytest.raises(BatchBackendError) as caught:
        backend.status(JOB_ID)

    assert str(caught.value).startswith(
        f"Azure Batch could not read the trainer task of job '{JOB_ID}': HTTP 403 AuthorizationFailure: "
        "This request is not authorized to perform this operation.")


def test_status_retries_connection_failures_then_names_the_job(backend, transport):
    transport.answers = [(ServiceRequestError("Connection reset by peer"),)] * 10

    with pytest.raises(BatchBackendError,
                       match=rf"could not read the trainer task of job '{JOB_ID}': Connection reset by peer"):
        backend.status(JOB_ID)
    # GETs are retried by azure-core's RetryPolicy: the first try plus its 3 connection retries
    assert _paths(transport) == [("GET", TASK_PATH)] * 4


def test_status_recovers_from_a_throttled_answer(backend, transport):
    throttled = batch_error("TooManyRequests", "The request rate is too high.")
    transport.answers = [(429, throttled, {"Retry-After": "0"}),
                         (200, task_body("running", execution={"startTime": "2026-11-20T10:20:00.000Z"}))]

    assert backend.status(JOB_ID) == JobStatus(JobState.RUNNING)
    assert _paths(transport) == [("GET", TASK_PATH)] * 2


def test_job_lookup_failure_while_queued_names_the_job(backend, transport):
    transport.answers = [(200, task_body("active")),
                         (403, batch_error("AuthorizationFailure", "This request is not authorized."))]

    with pytest.raises(BatchBackendError, match=rf"could not read job '{JOB_ID}': HTTP 403"):
        backend.status(JOB_ID)
