"""Every Bicep file parses (tree-sitter-bicep), references files that exist, and uses API versions
whose schemas were checked for the properties we set."""
from __future__ import annotations

import json

import pytest

from tests.infra import bicep_source as b

# Resource types and the API versions whose schemas were read for the properties the templates set
# (learn.microsoft.com/azure/templates, Azure/azure-rest-api-specs). A new type or version must be
# checked the same way and added here.
VERIFIED_API_VERSIONS = {
    "Microsoft.Resources/resourceGroups": "2024-03-01",
    "Microsoft.ManagedIdentity/userAssignedIdentities": "2023-01-31",
    "Microsoft.Storage/storageAccounts": "2023-05-01",
    "Microsoft.Storage/storageAccounts/blobServices": "2023-05-01",
    "Microsoft.Storage/storageAccounts/blobServices/containers": "2023-05-01",
    "Microsoft.Storage/storageAccounts/tableServices": "2023-05-01",
    "Microsoft.Storage/storageAccounts/tableServices/tables": "2023-05-01",
    "Microsoft.OperationalInsights/workspaces": "2023-09-01",
    "Microsoft.Insights/components": "2020-02-02",
    "Microsoft.ContainerRegistry/registries": "2023-07-01",
    "Microsoft.Web/serverfarms": "2024-04-01",
    "Microsoft.Web/sites": "2024-04-01",
    "Microsoft.Batch/batchAccounts": "2025-06-01",
    "Microsoft.Batch/batchAccounts/pools": "2025-06-01",
    "Microsoft.EventGrid/systemTopics": "2022-06-15",
    "Microsoft.Authorization/roleAssignments": "2022-04-01",
}

BICEP_FILES = b.bicep_files()


def test_the_templates_exist() -> None:
    names = {p.relative_to(b.INFRA).as_posix() for p in BICEP_FILES}
    assert {"main.bicep", "app/api.bicep", "app/batch.bicep", "app/rbac.bicep", "app/eventgrid.bicep"} <= names


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(b.INFRA).as_posix())
def test_bicep_file_parses_without_errors(path) -> None:
    problems = b.syntax_problems(b.parse(path))
    assert problems == [], f"{path.relative_to(b.REPO_ROOT)}: {problems}"


@pytest.mark.parametrize(
    "broken",
    [
        b"resource x 'Microsoft.Web/sites@2024-04-01' = {\n  name: 'a'\n",  # unclosed object
        b"param count int = \n",  # missing value
        b"var x = [\n  'a'\n  'b'\n",  # unclosed array
    ],
)
def test_the_syntax_check_catches_broken_bicep(broken: bytes) -> None:
    assert b.syntax_problems(b.parse_bytes(broken)) != []


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(b.INFRA).as_posix())
def test_modules_and_loaded_files_exist(path) -> None:
    tree = b.parse(path)
    for module in b.declarations(tree, "module"):
        target = b.string_value(next(c for c in module.node.named_children if c.type == "string"))
        assert (path.parent / target).is_file(), f"{path.name}: module {module.name} -> {target} not found"
    for node in b.walk(tree.root_node):
        if node.type == "call_expression" and b.text(node.named_children[0]) in ("loadJsonContent", "loadTextContent"):
            target = b.string_value(node.named_children[1].named_children[0])
            assert (path.parent / target).is_file(), f"{path.name}: {target} not found"


def test_abbreviations_are_valid_json_and_all_used_keys_exist() -> None:
    abbrs = json.loads((b.INFRA / "abbreviations.json").read_text())
    main = (b.INFRA / "main.bicep").read_text()
    used = {node_text.split(".", 1)[1] for node_text in (
        b.text(n) for n in b.walk(b.parse(b.INFRA / "main.bicep").root_node) if n.type == "member_expression"
    ) if node_text.startswith("abbrs.")}
    assert used, "main.bicep uses no abbreviations?"
    assert used <= set(abbrs), f"missing in abbreviations.json: {used - set(abbrs)}"
    assert "loadJsonContent('./abbreviations.json')" in main


def test_every_resource_uses_a_verified_api_version() -> None:
    seen: dict[str, set[str]] = {}
    for path in BICEP_FILES:
        for type_string, _ in b.all_resources(b.parse(path)):
            if "@" not in type_string:  # nested child ('config'): inherits its parent's version
                continue
            resource_type, version = type_string.split("@")
            seen.setdefault(resource_type, set()).add(version)
    unverified = {t: v for t, v in seen.items() if v != {VERIFIED_API_VERSIONS.get(t)}}
    assert unverified == {}, "resource types whose API version was not checked (see VERIFIED_API_VERSIONS)"
    assert set(seen) == set(VERIFIED_API_VERSIONS), f"unused entries: {set(VERIFIED_API_VERSIONS) - set(seen)}"
