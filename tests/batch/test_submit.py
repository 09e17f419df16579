"""Wire tests of AzureBatchBackend.submit: the exact REST calls a real BatchClient sends."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from azure.core.exceptions import ServiceRequestError

from loupe.jobs.azure_batch import AzureBatchBackend, BatchBackendError, BatchConfigurationError
from loupe.jobs.spec import JobSpec
from loupe.settings import Settings
from tests.batch.fakes import (
    BATCH_SCOPE,
    NODE_CLIENT_ID,
    NODE_IDENTITY,
    TOKEN,
    USER_SAS,
    FakeBatchTransport,
    StaticCredential,
    batch_client,
    batch_error,
)

JOB_ID = "loupe-train-bird-species-v2-d5426b310bef"
JOB_PATH = f"/jobs/{JOB_ID}"
RUN_ID = "0f9c2d61a4b84f4e9d1c7e35b2a06f18"
IDENTITY_REF = {"resourceId": NODE_IDENTITY}

EXPECTED_JOB = {
    "id": JOB_ID,
    "displayName": "Loupe train bird-species-v2",
    "poolInfo": {"poolId": "loupe-gpu"},
    # 1 h 30 min budget + 30 min task margin + 1 h start-up margin
    "constraints": {"maxWallClockTime": "PT03H00M00S"},
    "onAllTasksComplete": "noaction",
    "metadata": [
        {"name": "loupe-model", "value": "bird-species-v2"},
        {"name": "loupe-run-id", "value": RUN_ID},
        {"name": "loupe-mode", "value": "train"},
    ],
}

EXPECTED_TASK = {
    "id": "trainer",
    "displayName": "python -m trainer (train bird-species-v2)",
    "commandLine": "",
    "containerSettings": {
        "imageName": "crloupeprod.azurecr.io/loupe-trainer:0.1.0",
        "containerRunOptions": "--shm-size=8g --init",
        "registry": {"registryServer": "crloupeprod.azurecr.io", "identityReference": IDENTITY_REF},
        "workingDirectory": "containerImageDefault",
    },
    "environmentSettings": [
        {"name": "LOUPE_JOB_SPEC", "value": f"models/bird-species-v2/jobs/{RUN_ID}/jobspec.json"},
        {"name": "LOUPE_STORAGE_BLOB_URI", "value": "https://stloupeprod.blob.core.windows.net"},
        {"name": "LOUPE_STORAGE_TABLE_URI", "value": "https://stloupeprod.table.core.windows.net"},
        {"name": "LOUPE_MODELS_CONTAINER", "value": "models"},
        {"name": "LOUPE_DATASETS_CONTAINER", "value": "datasets"},
        {"name": "LOUPE_CUSTOMVISION_CONTAINER", "value": "customvision"},
        {"name": "LOUPE_ALLOWED_STORAGE_HOSTS", "value": "userdata.blob.core.windows.net"},
        {"name": "LOUPE_ALLOW_ANY_IMAGE_HOST", "value": "false"},
        {"name": "LOUPE_MANAGED_IDENTITY_CLIENT_ID", "value": NODE_CLIENT_ID},
        {"name": "AZURE_CLIENT_ID", "value": NODE_CLIENT_ID},
    ],
    # 1 h 30 min budget + 30 min margin; files kept on the node for a day
    "constraints": {"maxWallClockTime": "PT02H00M00S", "retentionTime": "P1D", "maxTaskRetryCount": 3},
    "outputFiles": [
        {
            "filePattern": "../std*.txt",
            "destination": {
                "container": {
                    "containerUrl": "https://stloupeprod.blob.core.windows.net/models",
                    "path": f"bird-species-v2/logs/{JOB_ID}",
                    "identityReference": IDENTITY_REF,
                }
            },
            "uploadOptions": {"uploadCondition": "taskcompletion"},
        }
    ],
}

EXPECTED_PATCH = {"onAllTasksComplete": "terminatejob"}


def _assert_batch_request(sent, method: str, path: str) -> None:
    assert (sent.method, sent.path) == (method, path)
    assert sent.query == {"api-version": ["2025-06-01"]}
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    if sent.body is not None:
        assert sent.headers["content-type"] == "application/json; odata=minimalmetadata"


def test_submit_sends_job_task_and_terminate_on_completion(backend, spec: JobSpec, transport, credential):
    transport.answers = [(201, None), (201, None), (200, None)]

    assert backend.submit(spec, spec.spec_blob) == spec.job_id == JOB_ID

    create_job, create_task, patch_job = transport.sent
    _assert_batch_request(create_job, "POST", "/jobs")
    assert create_job.url.startswith("https://loupebatch.westeurope.batch.azure.com/jobs?")
    assert create_job.body == EXPECTED_JOB
    _assert_batch_request(create_task, "POST", f"{JOB_PATH}/tasks")
    assert create_task.body == EXPECTED_TASK
    _assert_batch_request(patch_job, "PATCH", JOB_PATH)
    assert patch_job.body == EXPECTED_PATCH
    # the token came from the given credential, for Batch's scope
    assert credential.scopes and all(scopes == (BATCH_SCOPE,) for scopes in credential.scopes)


def test_no_secret_reaches_batch(settings: Settings, spec: JobSpec, transport, credential):
    # even with an account key configured (a connection string), only service URIs are forwarded
    key = "bG91cGVzZWNyZXRhY2NvdW50a2V5MDEyMzQ1Njc4OWFiY2RlZg=="
    connection = f"DefaultEndpointsProtocol=https;AccountName=stloupeprod;AccountKey={key}"
    keyed = settings.model_copy(update={"storage_connection_string": connection})
    transport.answers = [(201, None), (201, None), (200, None)]
    AzureBatchBackend(keyed, client=batch_client(transport, credential)).submit(spec, spec.spec_blob)

    wire = "\n".join(sent.raw for sent in transport.sent)
    # the user's SAS travels only inside the private spec blob, never in Batch's job/task records
    assert USER_SAS not in wire and "sig=" not in wire and key not in wire
    for marker in ("AccountKey", "SharedAccessSignature", "password", "username", "DefaultEndpointsProtocol"):
        assert marker.lower() not in wire.lower()
    task = transport.sent[1].body
    assert all("?" not in env["value"] for env in task["environmentSettings"])
    assert "?" not in task["outputFiles"][0]["destination"]["container"]["containerUrl"]


def test_evaluation_run_gets_its_own_job_and_log_folder(backend, spec: JobSpec, transport):
    evaluation = spec.model_copy(update={"mode": "evaluate", "evaluation_name": "holdout-2026-11",
                                         "budget_seconds": 900.5})
    transport.answers = [(201, None), (201, None), (200, None)]

    job_id = backend.submit(evaluation, evaluation.spec_blob)

    assert job_id == evaluation.job_id != spec.job_id and job_id.startswith("loupe-eval-bird-species-v2-")
    job, task = transport.sent[0].body, transport.sent[1].body
    # 15 min 0.5 s rounds up to whole seconds; margins as for training
    assert job["constraints"] == {"maxWallClockTime": "PT01H45M01S"}
    assert task["constraints"]["maxWallClockTime"] == "PT45M01S"
    env = {e["name"]: e["value"] for e in task["environmentSettings"]}
    assert env["LOUPE_JOB_SPEC"] == (
        f"models/bird-species-v2/evaluations/holdout-2026-11/jobs/{RUN_ID}/jobspec.json")
    assert task["outputFiles"][0]["destination"]["container"]["path"] == f"bird-species-v2/logs/{job_id}"


def test_resubmit_of_an_existing_job_adds_no_second_task(backend, spec: JobSpec, transport):
    transport.answers = [
        (409, batch_error("JobExists", "The specified job already exists.")),
        (409, batch_error("TaskExists", "The specified task already exists.")),
        (200, None),
    ]

    assert backend.submit(spec, spec.spec_blob) == JOB_ID

    assert [(s.method, s.path) for s in transport.sent] == [
        ("POST", "/jobs"), ("POST", f"{JOB_PATH}/tasks"), ("PATCH", JOB_PATH)]
    assert transport.sent[1].body["id"] == "trainer"


def test_http_retry_after_a_lost_response_is_idempotent(backend, spec: JobSpec, transport):
    # the first create reached Batch but its answer was a 503: azure-core's RetryPolicy retries the POST
    transport.answers = [
        (503, batch_error("ServerBusy", "The server is currently unable to receive requests.")),
        (409, batch_error("JobExists", "The specified job already exists.")),
        (201, None),
        (200, None),
    ]

    assert backend.submit(spec, spec.spec_blob) == JOB_ID

    assert [(s.method, s.path) for s in transport.sent] == [
        ("POST", "/jobs"), ("POST", "/jobs"), ("POST", f"{JOB_PATH}/tasks"), ("PATCH", JOB_PATH)]
    assert transport.sent[0].body == transport.sent[1].body == EXPECTED_JOB
    assert transport.sent[2].body == EXPECTED_TASK


def test_resubmit_after_the_run_was_cancelled_does_not_revive_it(backend, spec: JobSpec, transport):
    transport.answers = [
        (409, batch_error("JobExists", "The specified job already exists.")),
        (409, batch_error("JobCompleted", "The specified job is already in a completed state.")),
    ]

    assert backend.submit(spec, spec.spec_blob) == JOB_ID
    assert len(transport.sent) == 2  # no PATCH of a completed job


def test_forbidden_submit_names_the_job_and_the_missing_role(backend, spec: JobSpec, transport):
    transport.answers = [(403, batch_error(
        "AuthorizationFailure", "This request is not authorized to perform this operation."))]

    with pytest.raises(BatchBackendError) as caught:
        backend.submit(spec, spec.spec_blob)

    message = str(caught.value)
    assert f"job '{JOB_ID}'" in message
    assert "HTTP 403 AuthorizationFailure" in message
    assert "This request is not authorized to perform this operation." in message
    assert "Azure Batch Job Submitter" in message
    assert "RequestId" not in message
    assert (caught.value.job_id, caught.value.status_code, caught.value.error_code) == (
        JOB_ID, 403, "AuthorizationFailure")
    assert len(transport.sent) == 1  # 403 is not retried


def test_other_conflicts_are_errors(backend, spec: JobSpec, transport):
    transport.answers = [(409, batch_error(
        "ActiveJobAndScheduleQuotaReached", "The specified account has reached its quota of active jobs."))]

    with pytest.raises(BatchBackendError, match=r"create job 'loupe-train-bird-species-v2-d5426b310bef'.*"
                                                r"HTTP 409 ActiveJobAndScheduleQuotaReached"):
        backend.submit(spec, spec.spec_blob)


def test_unreachable_batch_is_reported_with_the_job(backend, spec: JobSpec, transport):
    # azure-core does not retry a POST whose connection failed: the caller retries submit (idempotent)
    transport.answers = [(ServiceRequestError("Connection refused"),)]

    with pytest.raises(BatchBackendError, match=rf"could not create job '{JOB_ID}': Connection refused"):
        backend.submit(spec, spec.spec_blob)
    assert len(transport.sent) == 1


def test_task_failure_after_job_creation_is_reported(backend, spec: JobSpec, transport):
    invalid = batch_error("InvalidPropertyValue",
                          "The value provided for one of the properties in the request body is invalid.")
    transport.answers = [(201, None), (400, invalid)]

    with pytest.raises(BatchBackendError, match=r"add the trainer task to job 'loupe-train-bird-species-v2-"
                                                r"d5426b310bef': HTTP 400 InvalidPropertyValue"):
        backend.submit(spec, spec.spec_blob)


@pytest.mark.parametrize("field, env", [
    ("batch_trainer_image", "LOUPE_BATCH_TRAINER_IMAGE"),
    ("batch_registry_server", "LOUPE_BATCH_REGISTRY_SERVER"),
    ("batch_node_identity_resource_id", "LOUPE_BATCH_NODE_IDENTITY_RESOURCE_ID"),
    ("batch_node_identity_client_id", "LOUPE_BATCH_NODE_IDENTITY_CLIENT_ID"),
    ("storage_blob_uri", "LOUPE_STORAGE_BLOB_URI"),
    ("storage_table_uri", "LOUPE_STORAGE_TABLE_URI"),
])
def test_missing_setting_is_named_before_any_request(settings: Settings, spec: JobSpec, field, env):
    transport, credential = FakeBatchTransport(), StaticCredential()
    backend = AzureBatchBackend(settings.model_copy(update={field: None}),
                                client=batch_client(transport, credential))

    with pytest.raises(BatchConfigurationError, match=env):
        backend.submit(spec, spec.spec_blob)
    assert transport.sent == []


@pytest.mark.parametrize("uri", [
    "https://stloupeprod.blob.core.windows.net/?sv=2025-05-05&sig=abc",
    "http://stloupeprod.blob.core.windows.net",
    "https://stloupeprod.blob.core.windows.net/models",
])
def test_storage_uri_must_be_a_plain_https_service_uri(settings: Settings, spec: JobSpec, uri):
    transport = FakeBatchTransport()
    backend = AzureBatchBackend(settings.model_copy(update={"storage_blob_uri": uri}),
                                client=batch_client(transport, StaticCredential()))

    with pytest.raises(BatchConfigurationError,
                       match="LOUPE_STORAGE_BLOB_URI must be a plain https service URI"):
        backend.submit(spec, spec.spec_blob)
    assert transport.sent == []


def test_missing_account_url_fails_at_construction(settings: Settings):
    with pytest.raises(BatchConfigurationError, match="LOUPE_BATCH_ACCOUNT_URL"):
        AzureBatchBackend(settings.model_copy(update={"batch_account_url": None}))


def test_default_client_uses_the_account_url_batch_scope_and_default_credential(settings: Settings):
    backend = AzureBatchBackend(settings)
    assert "_client" not in backend.__dict__  # nothing built (or imported) until first use

    client = backend._client

    assert client._config.endpoint == settings.batch_account_url
    assert client._config.credential_scopes == [BATCH_SCOPE]
    assert client._config.api_version == "2025-06-01"
    assert type(client._config.credential).__name__ == "DefaultAzureCredential"
    assert client._config.retry_policy.total_retries == 5


def test_given_credential_is_used(settings: Settings):
    credential = StaticCredential()
    assert AzureBatchBackend(settings, credential=credential)._client._config.credential is credential



def test_importing_the_backend_does_not_import_azure_identity():
    # Functions must finish start-up within 30 s: the credential library loads on first Batch call
    code = "import sys, loupe.jobs.azure_batch; print('azure.identity' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.strip() == "False"


def test_the_hosts_trainer_threads_reach_the_task(settings: Settings, spec: JobSpec, transport, credential):
    threaded = settings.model_copy(update={"trainer_threads": 4, "backbone_weights_dir": "/host/weights",
                                           "detector_cpu_max_iterations": 30})
    transport.answers = [(201, None), (201, None), (200, None)]
    AzureBatchBackend(threaded, client=batch_client(transport, credential)).submit(spec, spec.spec_blob)
    env = {e["name"]: e["value"] for e in transport.sent[1].body["environmentSettings"]}
    assert env["LOUPE_TRAINER_THREADS"] == "4"
    assert env["LOUPE_DETECTOR_CPU_MAX_ITERATIONS"] == "30"
    # the image's own weights folders stay in force: a host path means nothing on a Batch node
    assert "LOUPE_BACKBONE_WEIGHTS_DIR" not in env
