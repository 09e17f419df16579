"""The azd hook scripts: syntax, the azd outputs they need, and what they run.

The POSIX scripts run for real under `sh`, with `az`, `azd` and `curl` replaced by stub commands
on PATH that record their arguments (Azure can't be reached here). The PowerShell twins can't run
here (no pwsh); they are checked for reading the same azd outputs.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from loupe.storage import names
from tests.infra import bicep_source as b

HOOKS = b.INFRA / "hooks"
SH_SCRIPTS = sorted(HOOKS.glob("*.sh"))
PS_SCRIPTS = sorted(HOOKS.glob("*.ps1"))

# Stub of the Azure CLI: logs each call (one argument per line, then '--'), answers from env.
AZ_STUB = r"""#!/bin/sh
{ for arg in "$@"; do printf '%s\n' "$arg"; done; echo --; } >> "$STUB_LOG"
case "$1 $2" in
  "acr repository") exit "${STUB_ACR_SHOW_RC:-1}" ;;
  "functionapp keys")
    count=$(cat "$STUB_DIR/key_calls" 2>/dev/null || echo 0); count=$((count + 1)); echo "$count" > "$STUB_DIR/key_calls"
    if [ -n "${STUB_KEY:-}" ] && [ "$count" -ge "${STUB_KEY_AFTER:-1}" ]; then echo "$STUB_KEY"; fi
    exit 0 ;;
  "eventgrid system-topic")
    count=$(cat "$STUB_DIR/create_calls" 2>/dev/null || echo 0); count=$((count + 1)); echo "$count" > "$STUB_DIR/create_calls"
    [ "$count" -gt "${STUB_CREATE_FAILURES:-0}" ] || exit 1
    exit 0 ;;
esac
exit 0
"""
RECORDING_STUB = """#!/bin/sh
{ echo "$(basename "$0")"; for arg in "$@"; do printf '%s\\n' "$arg"; done; echo --; } >> "$STUB_LOG"
exit 0
"""


def calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    result, current = [], []
    for line in log.read_text().splitlines():
        if line == "--":
            result.append(current)
            current = []
        else:
            current.append(line)
    return result


@pytest.fixture
def stubs(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "stub-bin"
    bin_dir.mkdir()
    (bin_dir / "az").write_text(AZ_STUB)
    for name in ("azd", "curl", "docker"):
        (bin_dir / name).write_text(RECORDING_STUB)
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    return {
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "STUB_LOG": str(tmp_path / "calls.log"),
        "STUB_DIR": str(tmp_path),
        "HOME": str(tmp_path),
    }


def run_hook(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=60)


def tree_with(tmp_path: Path, script: str, files: dict[str, str]) -> Path:
    """A small repository copy: the hook at infra/hooks/ plus the given files."""
    root = tmp_path / "repo"
    (root / "infra" / "hooks").mkdir(parents=True)
    shutil.copy(HOOKS / script, root / "infra" / "hooks" / script)
    for relative, content in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(content)
    return root / "infra" / "hooks" / script


def main_outputs() -> set[str]:
    return {d.name for d in b.declarations(b.parse(b.INFRA / "main.bicep"), "output")}


def test_each_posix_hook_has_a_windows_twin() -> None:
    assert {p.stem for p in SH_SCRIPTS} == {p.stem for p in PS_SCRIPTS} == {"preprovision", "postprovision", "postdeploy"}


@pytest.mark.parametrize("script", SH_SCRIPTS, ids=lambda p: p.name)
def test_posix_hook_syntax(script: Path) -> None:
    result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("stem", ["postprovision", "postdeploy"])
def test_hooks_require_only_azd_outputs_and_both_variants_agree(stem: str) -> None:
    posix = set(re.findall(r"\$\{([A-Z_]+):\?", (HOOKS / f"{stem}.sh").read_text()))
    windows = set(re.findall(r"Require '([A-Z_]+)'", (HOOKS / f"{stem}.ps1").read_text()))
    assert posix, f"{stem}.sh reads no azd outputs?"
    assert posix == windows, f"{stem}: sh needs {posix - windows}, pwsh needs {windows - posix}"
    assert posix <= main_outputs(), f"not output by main.bicep: {posix - main_outputs()}"


# --- preprovision: the content tag


def test_preprovision_tags_by_content(tmp_path: Path, stubs: dict[str, str]) -> None:
    script = tree_with(tmp_path, "preprovision.sh", {"trainer_image/trainer/main.py": "print(1)\n",
                                                    "loupe/core.py": "X = 1\n", "requirements.txt": "a==1\n"})
    root = script.parents[2]
    env = {**stubs, "AZURE_ENV_NAME": "dev"}

    def tag() -> str:
        Path(env["STUB_LOG"]).unlink(missing_ok=True)
        result = run_hook(script, env)
        assert result.returncode == 0, result.stderr
        [call] = calls(Path(env["STUB_LOG"]))
        assert call[:4] == ["azd", "env", "set", "TRAINER_IMAGE_TAG"] and call[5:] == ["--environment", "dev"]
        assert re.fullmatch(r"t-[0-9a-f]{12}", call[4])
        return call[4]

    first = tag()
    assert tag() == first, "same content, same tag"
    (root / "loupe" / "__pycache__").mkdir()
    (root / "loupe" / "__pycache__" / "core.cpython-311.pyc").write_bytes(b"\0")
    assert tag() == first, "bytecode caches don't change the image"
    (root / "trainer_image" / "trainer" / "main.py").write_text("print(2)\n")
    assert tag() != first, "a changed trainer gets a new tag"


def test_preprovision_manual_mode_keeps_the_tag(tmp_path: Path, stubs: dict[str, str]) -> None:
    script = tree_with(tmp_path, "preprovision.sh", {"loupe/core.py": "X = 1\n"})
    result = run_hook(script, {**stubs, "TRAINER_IMAGE_TAG_MODE": "manual", "TRAINER_IMAGE_TAG": "v7"})
    assert result.returncode == 0 and "keeping TRAINER_IMAGE_TAG=v7" in result.stdout
    assert calls(Path(stubs["STUB_LOG"])) == []


# --- postprovision: the trainer image build

REGISTRY_ENV = {
    "AZURE_CONTAINER_REGISTRY_NAME": "crabc",
    "AZURE_CONTAINER_REGISTRY_ENDPOINT": "crabc.azurecr.io",
    "TRAINER_IMAGE_REPOSITORY": "loupe-trainer",
    "TRAINER_IMAGE_TAG": "t-0123456789ab",
    "AZURE_SUBSCRIPTION_ID": "sub-1",
}
BUILD_TREE = {"trainer_image/Dockerfile": "FROM scratch\n", ".dockerignore": ".venv\n"}


def test_postprovision_builds_in_acr_when_the_tag_is_missing(tmp_path: Path, stubs: dict[str, str]) -> None:
    script = tree_with(tmp_path, "postprovision.sh", BUILD_TREE)
    result = run_hook(script, {**stubs, **REGISTRY_ENV, "STUB_ACR_SHOW_RC": "1"})
    assert result.returncode == 0, result.stderr
    show, build = calls(Path(stubs["STUB_LOG"]))
    assert show[:3] == ["acr", "repository", "show"] and "loupe-trainer:t-0123456789ab" in show
    assert build == ["acr", "build", "--registry", "crabc", "--image", "loupe-trainer:t-0123456789ab",
                     "--file", "trainer_image/Dockerfile", "--platform", "linux/amd64", "--timeout", "7200",
                     "--subscription", "sub-1", "."]


def test_postprovision_skips_an_existing_tag(tmp_path: Path, stubs: dict[str, str]) -> None:
    script = tree_with(tmp_path, "postprovision.sh", BUILD_TREE)
    result = run_hook(script, {**stubs, **REGISTRY_ENV, "STUB_ACR_SHOW_RC": "0"})
    assert result.returncode == 0 and "already exists" in result.stdout
    assert [c[:2] for c in calls(Path(stubs["STUB_LOG"]))] == [["acr", "repository"]]


def test_postprovision_refuses_to_upload_the_repository_without_dockerignore(tmp_path: Path, stubs: dict[str, str]) -> None:
    script = tree_with(tmp_path, "postprovision.sh", {"trainer_image/Dockerfile": "FROM scratch\n"})
    result = run_hook(script, {**stubs, **REGISTRY_ENV})
    assert result.returncode != 0 and ".dockerignore" in result.stderr
    assert not any(c[:2] == ["acr", "build"] for c in calls(Path(stubs["STUB_LOG"])))


def test_postprovision_local_docker_mode(tmp_path: Path, stubs: dict[str, str]) -> None:
    script = tree_with(tmp_path, "postprovision.sh", BUILD_TREE)
    result = run_hook(script, {**stubs, **REGISTRY_ENV, "TRAINER_IMAGE_BUILD": "docker"})
    assert result.returncode == 0, result.stderr
    logged = calls(Path(stubs["STUB_LOG"]))
    assert ["acr", "login", "--name", "crabc", "--subscription", "sub-1"] in logged
    assert ["docker", "push", "crabc.azurecr.io/loupe-trainer:t-0123456789ab"] in logged


def test_postprovision_needs_the_provision_outputs(tmp_path: Path, stubs: dict[str, str]) -> None:
    script = tree_with(tmp_path, "postprovision.sh", BUILD_TREE)
    result = run_hook(script, stubs)
    assert result.returncode != 0 and "AZURE_CONTAINER_REGISTRY_NAME" in result.stderr


# --- postdeploy: the Event Grid subscription

DEPLOY_ENV = {
    "AZURE_RESOURCE_GROUP": "rg-dev",
    "AZURE_FUNCTION_APP_NAME": "func-api-abc",
    "SERVICE_API_HOSTNAME": "func-api-abc.azurewebsites.net",
    "EVENTGRID_SYSTEM_TOPIC_NAME": "evgt-abc",
    "DATASETS_CONTAINER_NAME": "datasets",
    "DATASET_BLOB_FUNCTION_NAME": names.BLOB_FUNCTION_NAME,
    "LOUPE_HOOK_PAUSE_SECONDS": "0",
}


def option(call: list[str], name: str) -> str:
    return call[call.index(name) + 1]


def test_postdeploy_subscribes_the_blob_function_once_the_key_exists(stubs: dict[str, str]) -> None:
    env = {**stubs, **DEPLOY_ENV, "STUB_KEY": "k3y==", "STUB_KEY_AFTER": "3", "STUB_CREATE_FAILURES": "1"}
    result = run_hook(HOOKS / "postdeploy.sh", env)
    assert result.returncode == 0, result.stderr
    logged = calls(Path(stubs["STUB_LOG"]))
    key_calls = [c for c in logged if c[:3] == ["functionapp", "keys", "list"]]
    assert len(key_calls) == 3 and option(key_calls[0], "--query") == "systemKeys.blobs_extension"
    assert sum(c[0] == "curl" for c in logged) == 3, "each attempt wakes the app"
    creates = [c for c in logged if c[:4] == ["eventgrid", "system-topic", "event-subscription", "create"]]
    assert len(creates) == 2, "a failed webhook validation is retried"
    create = creates[-1]
    assert option(create, "--endpoint") == (
        "https://func-api-abc.azurewebsites.net/runtime/webhooks/blobs"
        f"?functionName=Host.Functions.{names.BLOB_FUNCTION_NAME}&code=k3y=="
    )
    assert option(create, "--system-topic-name") == "evgt-abc"
    assert option(create, "--resource-group") == "rg-dev"
    assert option(create, "--endpoint-type") == "webhook"
    assert option(create, "--included-event-types") == "Microsoft.Storage.BlobCreated"
    assert option(create, "--subject-begins-with") == "/blobServices/default/containers/datasets/blobs/"
    assert option(create, "--subject-ends-with") == ".json"
    assert "k3y" not in result.stdout + result.stderr, "the system key must not be printed"


def test_postdeploy_can_deliver_every_blob(stubs: dict[str, str]) -> None:
    env = {**stubs, **DEPLOY_ENV, "STUB_KEY": "k", "DATASET_EVENTS_SUBJECT_SUFFIX": ""}
    assert run_hook(HOOKS / "postdeploy.sh", env).returncode == 0
    [create] = [c for c in calls(Path(stubs["STUB_LOG"])) if c[:2] == ["eventgrid", "system-topic"]]
    assert "--subject-ends-with" not in create


def test_postdeploy_fails_clearly_without_a_key(stubs: dict[str, str]) -> None:
    env = {**stubs, **DEPLOY_ENV, "LOUPE_HOOK_KEY_ATTEMPTS": "2"}
    result = run_hook(HOOKS / "postdeploy.sh", env)
    assert result.returncode != 0
    assert "no blobs_extension system key after 2 attempts" in result.stderr
    assert not any(c[:2] == ["eventgrid", "system-topic"] for c in calls(Path(stubs["STUB_LOG"])))


def test_postdeploy_gives_up_after_three_failed_creates(stubs: dict[str, str]) -> None:
    env = {**stubs, **DEPLOY_ENV, "STUB_KEY": "k", "STUB_CREATE_FAILURES": "5"}
    result = run_hook(HOOKS / "postdeploy.sh", env)
    assert result.returncode != 0 and "could not create Event Grid subscription" in result.stderr
    assert sum(c[:2] == ["eventgrid", "system-topic"] for c in calls(Path(stubs["STUB_LOG"]))) == 3
