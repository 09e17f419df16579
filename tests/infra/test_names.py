"""Names the code and the templates share: containers, tables, the blob function, the pool, parameters."""
from __future__ import annotations

import json
import re

from loupe.settings import Settings
from loupe.storage import names
from tests.infra import bicep_source as b

MAIN = b.parse(b.INFRA / "main.bicep")


def main_var(name: str) -> object:
    decl = b.declaration(MAIN, "var", name)
    assert decl.value is not None
    if decl.value.type == "array":
        return [b.string_value(item) for item in b.array_items(decl.value)]
    return b.string_value(decl.value)


def test_tables_are_the_ones_the_code_uses() -> None:
    assert sorted(main_var("tableNames")) == sorted(names.ALL_TABLES)


def test_containers_match_the_settings_defaults() -> None:
    # Bicep also sets LOUPE_DATASETS_CONTAINER/LOUPE_MODELS_CONTAINER, but local runs and the
    # trainer's defaults must name the same containers.
    assert main_var("datasetsContainerName") == Settings.model_fields["datasets_container"].default
    assert main_var("modelsContainerName") == Settings.model_fields["models_container"].default
    assert main_var("customVisionContainerName") == Settings.model_fields["customvision_container"].default


def test_storage_creates_the_data_containers_and_the_tables() -> None:
    storage = b.body(b.declaration(MAIN, "module", "storage").value)
    params = dict(b.object_properties(b.get_path(storage, "params")))
    containers = {b.text(item) for item in b.array_items(params["containerNames"])}
    assert {"datasetsContainerName", "modelsContainerName", "customVisionContainerName", "deploymentContainerName"} == containers
    assert b.text(params["tableNames"]) == "tableNames"


def test_event_grid_targets_the_blob_function_of_the_code() -> None:
    assert main_var("datasetBlobFunctionName") == names.BLOB_FUNCTION_NAME
    output = b.declaration(MAIN, "output", "DATASET_BLOB_FUNCTION_NAME")
    assert b.text(output.value) == "datasetBlobFunctionName"


def test_pool_id_matches_the_settings_default() -> None:
    assert main_var("batchPoolId") == Settings.model_fields["batch_pool_id"].default


def test_azure_names_are_within_their_limits() -> None:
    abbrs = json.loads((b.INFRA / "abbreviations.json").read_text())
    token = 13  # uniqueString() length
    assert 3 <= len(abbrs["storageStorageAccounts"]) + token <= 24  # storage: 3-24 lowercase alphanumerics
    assert 3 <= len(abbrs["batchBatchAccounts"]) + token <= 24  # Batch: 3-24 lowercase alphanumerics
    assert 5 <= len(abbrs["containerRegistryRegistries"]) + token <= 50  # ACR: 5-50 alphanumerics
    for key in ("storageStorageAccounts", "batchBatchAccounts", "containerRegistryRegistries"):
        assert re.fullmatch(r"[a-z0-9]+", abbrs[key]), f"{key} must be lowercase alphanumeric"
    for table in main_var("tableNames"):
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,62}", table)


def test_parameters_file_maps_only_declared_parameters_and_covers_required_ones() -> None:
    parameters = json.loads((b.INFRA / "main.parameters.json").read_text())["parameters"]
    declared = {d.name: d for d in b.declarations(MAIN, "param")}
    assert set(parameters) <= set(declared), f"unknown parameters: {set(parameters) - set(declared)}"
    for name, decl in declared.items():
        if decl.value is not None or name in parameters:
            continue
        # no default and not mapped: azd must generate it (apiKeys) or the deployment fails
        assert any("type: 'generate'" in d for d in decl.decorators), f"parameter {name} has no value source"
    for name, entry in parameters.items():
        assert re.fullmatch(r"\$\{[A-Z_][A-Z0-9_]*(=[^}]*)?\}", entry["value"]), f"{name}: {entry['value']!r}"


def test_api_keys_are_secure_generated_and_not_output() -> None:
    decl = b.declaration(MAIN, "param", "apiKeys")
    assert "@secure()" in decl.decorators
    generate = next(d for d in decl.decorators if d.startswith("@metadata"))
    # comma separates keys in LOUPE_API_KEYS: a generated key must not contain one
    assert "noSpecial: true" in generate
    for output in b.declarations(MAIN, "output"):
        assert "apiKeys" not in b.text(output.value)
