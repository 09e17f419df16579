"""Fixtures for the Batch wire tests: deployment-shaped settings, a realistic JobSpec, the fake wire."""
from __future__ import annotations

import pytest
from pydantic import SecretStr

from loupe.enums import AnnotationKind, ModelKind, StorageAuthKind
from loupe.jobs.azure_batch import AzureBatchBackend
from loupe.jobs.spec import DatasetSource, JobOutput, JobSpec
from loupe.settings import Settings
from tests.batch.fakes import (
    ACCOUNT_URL,
    FUNCTION_CLIENT_ID,
    NODE_CLIENT_ID,
    NODE_IDENTITY,
    USER_SAS,
    FakeBatchTransport,
    StaticCredential,
    batch_client,
)


@pytest.fixture
def settings() -> Settings:
    return Settings(
        storage_blob_uri="https://stloupeprod.blob.core.windows.net/",
        storage_table_uri="https://stloupeprod.table.core.windows.net/",
        managed_identity_client_id=FUNCTION_CLIENT_ID,
        models_container="models",
        datasets_container="datasets",
        allowed_storage_hosts=["userdata.blob.core.windows.net"],
        job_backend="azure-batch",
        batch_account_url=ACCOUNT_URL,
        batch_pool_id="loupe-gpu",
        batch_trainer_image="crloupeprod.azurecr.io/loupe-trainer:0.1.0",
        batch_registry_server="crloupeprod.azurecr.io",
        batch_node_identity_resource_id=NODE_IDENTITY,
        batch_node_identity_client_id=NODE_CLIENT_ID,
        batch_max_task_retries=3,
    )


@pytest.fixture
def spec() -> JobSpec:
    return JobSpec(
        model_name="bird-species-v2",
        run_id="0f9c2d61a4b84f4e9d1c7e35b2a06f18",
        model_kind=ModelKind.CLASSIFIER,
        training_dataset=DatasetSource(
            name="birds",
            annotation_kind=AnnotationKind.CLASSIFICATION,
            annotation_file_uris=["https://userdata.blob.core.windows.net/birds/train_coco.json"],
            auth_kind=StorageAuthKind.SAS,
            sas_token=SecretStr(USER_SAS),
        ),
        budget_seconds=5400,  # the retired API's trainingBudgetInHours is whole hours; 1.5 h here
        output=JobOutput(container="models", prefix="bird-species-v2/"),
    )


@pytest.fixture
def transport() -> FakeBatchTransport:
    return FakeBatchTransport()


@pytest.fixture
def credential() -> StaticCredential:
    return StaticCredential()


@pytest.fixture
def backend(settings: Settings, transport: FakeBatchTransport,
            credential: StaticCredential) -> AzureBatchBackend:
    return AzureBatchBackend(settings, client=batch_client(transport, credential))
