"""The Function App settings in Bicep and loupe.settings.Settings agree.

The Settings class is read dynamically: a field added to loupe/settings.py fails this test until it
is either set in Bicep or listed below as safe to leave at its default on Azure.
"""
from __future__ import annotations

import typing
from collections import Counter

import pytest
from tree_sitter import Node

from loupe.settings import Settings
from tests.infra import bicep_source as b

ENV_PREFIX = "LOUPE_"

# Fields whose local default is also right on Azure, each with the reason it may be omitted.
OPTIONAL_ON_AZURE = {
    "allowed_storage_hosts": "extra hosts for dataset files; Loupe's own account is always allowed, users add more",
    "allow_any_image_host": "secure default (off); turning it on is a deliberate user choice",
    "image_check_full_limit": "validation tuning; the default fits the HTTP time limit",
    "image_check_sample_size": "validation tuning",
    "image_check_concurrency": "validation tuning",
    "local_max_concurrent_jobs": "only read by the local job backend; Azure uses azure-batch",
    "local_jobs_dir": "only read by the local job backend; Azure uses azure-batch",
    "local_warm_trainer": "only read by the local job backend; Azure uses azure-batch",
    "trainer_threads": "trainer tuning; unset = every CPU of the Batch node",
    "detector_cpu_max_iterations": "trainer tuning for CPU runs; Batch nodes train on a GPU",
    "backbone_weights_dir": "only read by the local backend; the trainer image bakes its weights in",
    "detection_weights_dir": "only read by the local backend; the trainer image bakes its weights in",
    "batch_max_task_retries": "the default retry count is the intended one",
    "batch_container_run_options": "its default (--shm-size=8g --init) is made for the Batch GPU nodes (28 GB RAM)",
    "heartbeat_timeout_seconds": "reconciler tuning",
    "reconcile_interval_seconds": "reconciler tuning",
    "inference_cache_size": "prediction tuning; fits the default 2048 MB instance",
    "allow_http_image_urls": "secure default (https only)",
    "allow_loopback_image_urls": "secure default (no loopback addresses); local development only",
    "inference_version_ttl_seconds": "prediction tuning; how stale a cached model may be across instances",
    "customvision_link_seconds": "how long image links stay valid; the default (an hour) is the intended one",
}
# Fields that must NOT be set on Azure, with the reason.
FORBIDDEN_ON_AZURE = {
    "storage_connection_string": "shared keys are disabled; storage is reached by service URI + managed identity",
}

# Settings the Flex Consumption plan rejects or that its functionAppConfig replaces.
FLEX_FORBIDDEN = {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE",
                  "WEBSITE_CONTENTSHARE", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "AzureWebJobsStorage",
                  "WEBSITE_NODE_DEFAULT_VERSION", "SCM_DO_BUILD_DURING_DEPLOYMENT", "ENABLE_ORYX_BUILD"}


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def settings_properties() -> list[tuple[str, Node, str]]:
    """(key, value node, file) of every object property in any Bicep file whose key is a LOUPE_ name."""
    found = []
    for path in b.bicep_files():
        for node in b.walk(b.parse(path).root_node):
            if node.type == "object_property":
                key = b.property_key(node)
                if key.startswith(ENV_PREFIX):
                    found.append((key, node.children[-1], path.relative_to(b.REPO_ROOT).as_posix()))
    return found


def app_settings_object() -> Node:
    tree = b.parse(b.INFRA / "app" / "api.bicep")
    for type_string, body in b.all_resources(tree):
        if type_string == "config" and b.string_value(b.get_path(body, "name")) == "appsettings":
            return b.get_path(body, "properties")
    raise AssertionError("infra/app/api.bicep has no appsettings config resource")


def test_the_lists_name_real_fields_only() -> None:
    fields = set(Settings.model_fields)
    assert set(OPTIONAL_ON_AZURE) <= fields, f"stale entries: {set(OPTIONAL_ON_AZURE) - fields}"
    assert set(FORBIDDEN_ON_AZURE) <= fields, f"stale entries: {set(FORBIDDEN_ON_AZURE) - fields}"
    assert not set(OPTIONAL_ON_AZURE) & set(FORBIDDEN_ON_AZURE)


def test_every_loupe_name_in_bicep_is_a_settings_field() -> None:
    known = {env_name(f) for f in Settings.model_fields}
    unknown = sorted({key for key, _, _ in settings_properties()} - known)
    assert unknown == [], f"Bicep sets {unknown}, which loupe.settings.Settings does not read"


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_each_required_field_is_set_exactly_once(field: str) -> None:
    occurrences = [where for key, _, where in settings_properties() if key == env_name(field)]
    if field in FORBIDDEN_ON_AZURE:
        assert occurrences == [], f"{env_name(field)} must not be set on Azure: {FORBIDDEN_ON_AZURE[field]}"
    elif field in OPTIONAL_ON_AZURE:
        assert len(occurrences) <= 1, f"{env_name(field)} set more than once: {occurrences}"
    else:
        assert len(occurrences) == 1, (
            f"{env_name(field)} is set {len(occurrences)} times in infra/ ({occurrences}); a Settings field must be "
            "set exactly once on Azure, or be listed in OPTIONAL_ON_AZURE with a reason"
        )


def test_loupe_settings_live_in_the_function_app_settings() -> None:
    keys = [key for key, _ in b.object_properties(app_settings_object())]
    assert {key for key, _, _ in settings_properties()} <= set(keys)
    duplicates = [key for key, count in Counter(keys).items() if count > 1]
    assert duplicates == []


def test_job_backend_is_azure_batch_and_allowed_by_settings() -> None:
    values = {key: value for key, value in b.object_properties(app_settings_object())}
    backend = b.string_value(values[env_name("job_backend")])
    allowed = typing.get_args(Settings.model_fields["job_backend"].annotation)
    assert backend == "azure-batch"
    assert backend in allowed


def test_host_storage_is_identity_based() -> None:
    values = {key: value for key, value in b.object_properties(app_settings_object())}
    for suffix in ("blobServiceUri", "queueServiceUri", "tableServiceUri", "clientId"):
        assert f"AzureWebJobsStorage__{suffix}" in values
    assert b.string_value(values["AzureWebJobsStorage__credential"]) == "managedidentity"
    assert "APPLICATIONINSIGHTS_AUTHENTICATION_STRING" in values
    assert not FLEX_FORBIDDEN & set(values), f"Flex Consumption rejects {FLEX_FORBIDDEN & set(values)}"


def _sample(value: Node) -> str:
    """A representative value for a Bicep expression: literals as written, references as samples."""
    if value.type == "string":
        return b.string_value(value, interpolate=lambda expression: "sample-" + expression.split(".")[-1])
    return "sample-" + b.text(value).split(".")[-1]


def test_the_azure_settings_load_into_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The values Bicep writes parse with Settings' own environment parsing, into a non-development,
    identity-based configuration (catches a wrong literal or a missing setting the code needs)."""
    for name in list(__import__("os").environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    for key, value in b.object_properties(app_settings_object()):
        if key.startswith(ENV_PREFIX):
            monkeypatch.setenv(key, _sample(value))
    settings = Settings()
    assert settings.job_backend == "azure-batch"
    assert not settings.development_mode
    assert settings.api_keys == ["sample-apiKeys"]
    assert not settings.uses_connection_string
    assert settings.storage_connection_string is None
    assert settings.managed_identity_client_id
    assert settings.batch_account_url and settings.batch_account_url.startswith("https://")
    assert settings.datasets_container and settings.models_container
