"""The architecture of docs/architecture.md, checked: the import contracts in pyproject.toml
(import-linter), that they cover every module, and the size rule for functions."""
from __future__ import annotations

import ast
import os
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import loupe

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
# what the trainer may import from the core (everything else is in the trainer contract's forbidden list)
TRAINER_MAY_IMPORT = ("loupe.runner", "loupe.jobs.spec", "loupe.artifacts", "loupe.preprocess", "loupe.imaging",
                      "loupe.archives", "loupe.metrics", "loupe.errors", "loupe.enums", "loupe.budget")
MAX_FUNCTION_LINES = 100


def _contract(contract_id: str) -> dict:
    return next(c for c in CONTRACTS if c["id"] == contract_id)


def _loupe_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(loupe.__path__, "loupe."))


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_import_contracts_hold():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "trainer_image")])}
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache", "--no-logo"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert f"{len(CONTRACTS)} kept, 0 broken" in result.stdout


def test_every_loupe_module_has_a_layer():
    layers = [part.strip() for layer in _contract("layers")["layers"] for part in layer.replace(":", "|").split("|")]
    top_level = {".".join(m.split(".")[:2]) for m in _loupe_modules()}
    missing = sorted(m for m in top_level if not any(_within(m, layer) for layer in layers))
    assert not missing, f"give these modules a place in the layers contract (pyproject.toml): {missing}"


def test_the_trainer_contract_forbids_every_module_it_does_not_allow():
    forbidden = _contract("trainer-imports")["forbidden_modules"]
    loose = [m for m in _loupe_modules()
             if not any(_within(m, ok) for ok in TRAINER_MAY_IMPORT)
             and not any(_within(m, no) for no in forbidden)
             and m != "loupe.jobs"]  # the package of loupe.jobs.spec
    assert not loose, f"the trainer could import these: add them to trainer-imports' forbidden_modules: {loose}"


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_no_azure_functions_inside_the_core():
    offenders = []
    for path in _python_files("loupe"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}" for n in names if _within(n, "azure.functions")]
    assert not offenders, f"azure.functions belongs in function_app.py and functions/ only: {offenders}"


def test_no_function_is_over_100_lines():
    long = []
    for path in _python_files("loupe", "trainer_image", "functions"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, f"split these: {long}"
