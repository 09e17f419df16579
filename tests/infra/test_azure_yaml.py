"""azure.yaml follows the rules of the azd schema it uses, and points at things that exist."""
from __future__ import annotations

import copy

import jsonschema
import pytest
import yaml

from tests.infra import bicep_source as b

AZURE_YAML = b.REPO_ROOT / "azure.yaml"

# The rules of https://raw.githubusercontent.com/Azure/azure-dev/main/schemas/v1.0/azure.yaml.json
# that this file relies on, restated (the published schema is not vendored): the name pattern,
# services with host/project/language, command-level hook names, and the hook object (shell enum,
# posix/windows overrides, no top-level run/shell when both are given, run required with shell).
HOOK_NAMES = [
    "preprovision", "postprovision", "preinfracreate", "postinfracreate", "preinfradelete", "postinfradelete",
    "predown", "postdown", "preup", "postup", "prepackage", "postpackage", "prepublish", "postpublish",
    "predeploy", "postdeploy", "prerestore", "postrestore",
]
HOOK = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "shell": {"type": "string", "enum": ["sh", "pwsh"]},
        "run": {"type": "string", "minLength": 1},
        "continueOnError": {"type": "boolean"},
        "interactive": {"type": "boolean"},
        "windows": {"$ref": "#/$defs/hook"},
        "posix": {"$ref": "#/$defs/hook"},
        "secrets": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "allOf": [
        {
            "if": {"required": ["windows", "posix"]},
            "then": {"properties": {"run": False, "shell": False, "interactive": False, "continueOnError": False}},
        },
        {
            "if": {"anyOf": [{"required": [k]} for k in ("interactive", "continueOnError", "secrets", "shell")]},
            "then": {"required": ["run"]},
        },
    ],
}
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2019-09/schema",
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 2, "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "metadata": {"type": "object", "properties": {"template": {"type": "string"}}},
        "infra": {
            "type": "object",
            "properties": {
                "provider": {"type": "string", "pattern": "^[a-z0-9.]+$"},
                "path": {"type": "string"},
                "module": {"type": "string"},
            },
        },
        "services": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "required": ["host"],
                "properties": {
                    "project": {"type": "string"},
                    "host": {"type": "string", "enum": ["appservice", "containerapp", "function", "springapp",
                                                        "staticwebapp", "aks", "ai.endpoint"]},
                    "language": {"type": "string", "enum": ["dotnet", "csharp", "fsharp", "py", "python", "js",
                                                            "ts", "java", "go", "golang", "docker"]},
                    "remoteBuild": {"type": "boolean"},
                },
                "allOf": [
                    {
                        "if": {"properties": {"host": {"enum": ["appservice", "function", "springapp", "staticwebapp"]}}},
                        "then": {"required": ["project"],
                                 "properties": {"image": False, "docker": False, "k8s": False, "env": False}},
                    }
                ],
            },
        },
        "hooks": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                name: {"anyOf": [{"$ref": "#/$defs/hook"}, {"type": "array", "items": {"$ref": "#/$defs/hook"}}]}
                for name in HOOK_NAMES
            },
        },
    },
    "$defs": {"hook": HOOK},
}


def load() -> dict:
    return yaml.safe_load(AZURE_YAML.read_text())


def validator() -> jsonschema.Draft201909Validator:
    return jsonschema.Draft201909Validator(SCHEMA)


def test_azure_yaml_is_valid() -> None:
    errors = sorted(validator().iter_errors(load()), key=lambda e: list(e.path))
    assert errors == [], [f"{list(e.path)}: {e.message}" for e in errors]


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda d: d.update(name="Loupe_App"), "name pattern"),
        (lambda d: d["services"]["api"].update(host="functions"), "host enum"),
        (lambda d: d["services"]["api"].pop("project"), "function host needs project"),
        (lambda d: d["hooks"].update(afterdeploy={"run": "x.sh"}), "unknown hook name"),
        (lambda d: d["hooks"]["postdeploy"]["posix"].update(shell="bash"), "shell enum"),
        (lambda d: d["hooks"]["postdeploy"].update(run="x.sh"), "run beside posix+windows"),
    ],
)
def test_schema_rules_reject_mistakes(mutate, why: str) -> None:
    data = copy.deepcopy(load())
    mutate(data)
    assert list(validator().iter_errors(data)), f"schema did not catch: {why}"


def test_api_service_is_the_function_app_at_the_repository_root() -> None:
    service = load()["services"]["api"]
    assert (service["project"], service["language"], service["host"]) == (".", "python", "function")
    project = b.REPO_ROOT / service["project"]
    for required in ("function_app.py", "host.json", "requirements.txt"):
        assert (project / required).is_file(), f"the function project needs {required}"


def test_service_name_matches_the_azd_service_tag_in_bicep() -> None:
    main = b.parse(b.INFRA / "main.bicep")
    api = b.body(b.declaration(main, "module", "api").value)
    service_name = b.string_value(b.get_path(api, "params", "serviceName"))
    assert set(load()["services"]) == {service_name}
    assert "'azd-service-name': serviceName" in (b.INFRA / "app" / "api.bicep").read_text()


def test_infra_points_at_main_bicep() -> None:
    infra = load()["infra"]
    assert (b.REPO_ROOT / infra["path"] / f"{infra['module']}.bicep").is_file()
    assert (b.REPO_ROOT / infra["path"] / f"{infra['module']}.parameters.json").is_file()


def test_every_hook_has_posix_and_windows_scripts_that_exist() -> None:
    hooks = load()["hooks"]
    assert {"preprovision", "postprovision", "postdeploy"} <= set(hooks)
    for name, hook in hooks.items():
        assert set(hook) == {"posix", "windows"}, f"{name}: give both a posix (sh) and a windows (pwsh) script"
        assert hook["posix"]["shell"] == "sh" and hook["posix"]["run"].endswith(".sh")
        assert hook["windows"]["shell"] == "pwsh" and hook["windows"]["run"].endswith(".ps1")
        for variant in ("posix", "windows"):
            assert (b.REPO_ROOT / hook[variant]["run"]).is_file(), f"{name}: {hook[variant]['run']} missing"
