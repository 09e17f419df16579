"""One settings object for every part of Loupe, read from the environment (prefix ``LOUPE_``).

Local defaults need no configuration: Azurite via ``UseDevelopmentStorage=true``, the local job
backend, and a documented development API key. On Azure, Bicep sets the service URIs, the managed
identity's client id, the Batch settings and the API keys (see infra/ and tests/infra/test_app_settings.py).
"""
from __future__ import annotations

import functools
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Documented in the README. Only accepted when LOUPE_API_KEYS is unset, and then the local
# host listens on loopback only.
DEVELOPMENT_API_KEY = "loupe-local-development-key"
DEVELOPMENT_STORAGE = "UseDevelopmentStorage=true"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOUPE_", extra="ignore", frozen=True)

    # --- storage: a connection string (local, Azurite) or service URIs + managed identity (Azure)
    storage_connection_string: str | None = None
    storage_blob_uri: str | None = None
    storage_table_uri: str | None = None
    # client id of the user-assigned managed identity; None = system identity / developer login
    managed_identity_client_id: str | None = None
    datasets_container: str = "datasets"
    models_container: str = "models"
    # Custom Vision projects' images, stored predictions and training snapshots (docs/customvision.md#storage)
    customvision_container: str = "customvision"
    # how long the signed read links of Custom Vision images stay valid
    customvision_link_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)

    # --- HTTP API
    api_keys: CsvList = Field(default_factory=list)

    # --- dataset validation
    # Hosts besides the configured storage account that annotation files and images may come from.
    allowed_storage_hosts: CsvList = Field(default_factory=list)
    # Let absolute_url/coco_url point at any host (never private/loopback addresses).
    allow_any_image_host: bool = False
    # Datasets up to this many images get every image fetched and decoded at registration;
    # larger ones get a bounded sample and the trainer checks the rest while downloading.
    image_check_full_limit: int = 2000
    image_check_sample_size: int = 200
    image_check_concurrency: int = 16

    # --- training jobs
    job_backend: Literal["local", "azure-batch"] = "local"
    local_max_concurrent_jobs: int = 1
    local_jobs_dir: str = ".loupe/jobs"
    # local backend: keep one trainer process started ahead, its imports done, while no job runs
    # (docs/training.md#time-to-model)
    local_warm_trainer: bool = True
    batch_account_url: str | None = None
    batch_pool_id: str = "loupe-gpu"
    batch_trainer_image: str | None = None
    batch_registry_server: str | None = None
    # resource id of the Batch nodes' user-assigned identity (ACR pull, storage access)
    batch_node_identity_resource_id: str | None = None
    batch_node_identity_client_id: str | None = None
    batch_max_task_retries: int = 3
    # --init forwards SIGTERM (cancel) to the trainer; PyTorch data loaders need shared memory
    batch_container_run_options: str = "--shm-size=8g --init"
    # --- read by the trainer; the job backends forward them from the host to every run
    # CPU threads per trainer (None: every CPU it may use); 1 suits a shared development machine
    trainer_threads: int | None = Field(default=None, ge=1)
    # caps a detector run on a CPU at this many iterations (None: the recipe's schedule); for a slow
    # machine, and the test suite (docs/training.md#detectors); GPU runs ignore it
    detector_cpu_max_iterations: int | None = Field(default=None, ge=1)
    # where the trainer finds ImageNet backbones / COCO detector weights (<name>.pth); the trainer
    # image bakes its own in, so only the local backend forwards these
    backbone_weights_dir: str | None = None
    detection_weights_dir: str | None = None
    # how long a trainer may stay silent before the reconciler declares it dead
    heartbeat_timeout_seconds: int = 120
    # how often the reconciler runs: the Azure timer's schedule and the local host's thread
    # (a divisor of a minute, or whole minutes dividing an hour, so a cron schedule can say it)
    reconcile_interval_seconds: int = 60

    # --- prediction
    inference_cache_size: int = 8
    # how long a cached model is served before its version is checked again in storage
    inference_version_ttl_seconds: float = 5.0
    # analyze's {"url": ...}: https only, public addresses only, unless relaxed for local development
    allow_http_image_urls: bool = False
    allow_loopback_image_urls: bool = False

    _split = field_validator("api_keys", "allowed_storage_hosts", mode="before")(_split_csv)

    @field_validator("reconcile_interval_seconds")
    @classmethod
    def _cron_expressible(cls, value: int) -> int:
        reconcile_schedule(value)
        return value

    @property
    def development_mode(self) -> bool:
        """No API keys configured: the documented development key works, loopback only."""
        return not self.api_keys

    @property
    def accepted_api_keys(self) -> list[str]:
        return list(self.api_keys) or [DEVELOPMENT_API_KEY]

    @property
    def uses_connection_string(self) -> bool:
        return self.storage_blob_uri is None

    @property
    def effective_connection_string(self) -> str:
        return self.storage_connection_string or DEVELOPMENT_STORAGE


def reconcile_schedule(seconds: int) -> str:
    """The six-field NCRONTAB schedule of the Functions timer that runs every ``seconds``."""
    if 0 < seconds < 60 and 60 % seconds == 0:
        return f"*/{seconds} * * * * *"
    if seconds % 60 == 0 and 0 < seconds // 60 < 60 and 60 % (seconds // 60) == 0:
        return f"0 */{seconds // 60} * * * *"
    raise ValueError(f"reconcile interval {seconds} s: use a divisor of 60 s, or whole minutes dividing an hour")


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
