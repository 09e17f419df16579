"""Read the files that fix versions, as text: pip requirement files, the trainer's Dockerfile and
its ignore files, and the Python imports of a deployable. No network, no pip, no Docker."""
from __future__ import annotations

import ast
import fnmatch
import functools
import importlib.metadata
import posixpath
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[2]

# --- pip requirement files

_INCLUDE = re.compile(r"^(?:-r|--requirement)(?:\s+|=)(\S+)$")


class RequirementsError(ValueError):
    pass


@dataclass(frozen=True)
class Pin:
    name: str  # canonical (PEP 503) name
    specifier: str  # as written, e.g. "==2.14.1"
    path: str  # repository-relative file
    line: int

    @property
    def version(self) -> str | None:
        """The version of an exact ``==`` pin; None for anything looser."""
        match = re.fullmatch(r"==\s*([^\s,*]+)", self.specifier)
        return match.group(1) if match else None

    def __str__(self) -> str:
        return f"{self.name}{self.specifier} ({self.path}:{self.line})"


def relative(path: Path) -> str:
    return path.resolve().relative_to(REPO_ROOT).as_posix()


def requirement_files() -> list[Path]:
    """Every pip requirements file of the repository (root and trainer image)."""
    return sorted([*REPO_ROOT.glob("requirements*.txt"), *(REPO_ROOT / "trainer_image").glob("requirements*.txt")])


def _logical_lines(path: Path, *, inline_comments: bool = True) -> list[tuple[int, str]]:
    """(line number, content) without comments and blank lines, continuation lines joined.

    ``inline_comments``: requirements files end a line at `` #``; a Dockerfile has only whole-line
    comments, which do not end a continuation."""
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        if not inline_comments and raw.strip().startswith("#"):
            continue
        content = (re.sub(r"(^|\s)#.*$", "", raw) if inline_comments else raw).strip()
        if not pending:
            start = number
        if content.endswith("\\"):
            pending += content[:-1] + " "
            continue
        content = (pending + content).strip()
        pending = ""
        if content:
            lines.append((start, content))
    return lines


@functools.cache
def read_requirements(path: Path) -> tuple[tuple[Pin, ...], tuple[tuple[str, Path], ...]]:
    """The pins a file writes itself, and its includes as (path as written, file resolved the way
    pip does: relative to the including file). Anything else (editable installs, index options,
    URLs, markers, constraints) is refused: these files hold pins and includes only."""
    pins, includes = [], []
    for number, content in _logical_lines(path):
        include = _INCLUDE.match(content)
        if include:
            includes.append((include.group(1), (path.parent / include.group(1)).resolve()))
            continue
        if content.startswith("-"):
            raise RequirementsError(f"{relative(path)}:{number}: unsupported option {content!r}")
        requirement = Requirement(content)
        if requirement.url or requirement.marker:
            raise RequirementsError(f"{relative(path)}:{number}: URL or marker in {content!r}")
        pins.append(Pin(canonicalize_name(requirement.name), str(requirement.specifier), relative(path), number))
    return tuple(pins), tuple(includes)


def parse_requirements(path: Path) -> tuple[tuple[Pin, ...], tuple[Path, ...]]:
    """(the file's own pins, the files it includes)."""
    pins, includes = read_requirements(path)
    return pins, tuple(resolved for _, resolved in includes)


def included_files(path: Path) -> list[Path]:
    """The file and every file it includes, recursively (each once, in pip's reading order)."""
    seen: list[Path] = []

    def visit(current: Path) -> None:
        current = current.resolve()
        if current in seen:
            return
        if not current.is_file():
            raise RequirementsError(f"{relative(path)} includes missing file {current}")
        seen.append(current)
        for child in parse_requirements(current)[1]:
            visit(child)

    visit(path)
    return seen


def install_set(path: Path) -> dict[str, list[Pin]]:
    """What ``pip install -r <path>`` is asked for: name -> every pin of it, across the includes."""
    found: dict[str, list[Pin]] = {}
    for file in included_files(path):
        for pin in parse_requirements(file)[0]:
            found.setdefault(pin.name, []).append(pin)
    return found


def versions(path: Path) -> dict[str, str | None]:
    """name -> pinned version of an install set (the first pin; conflicts are tested separately)."""
    return {name: pins[0].version for name, pins in install_set(path).items()}


# --- Dockerfile


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    arguments: str
    line: int


def dockerfile_instructions(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comment lines dropped."""
    result: list[Instruction] = []
    for line, text in _logical_lines(path, inline_comments=False):
        keyword, _, arguments = text.partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip(), line))
    return result


def dockerfile_comments(path: Path) -> str:
    return "\n".join(line for line in path.read_text().splitlines() if line.strip().startswith("#"))


def base_image(path: Path) -> str:
    """The image of the (last) FROM, with ${ARG} defaults of the global ARGs substituted."""
    args: dict[str, str] = {}
    image = None
    for instruction in dockerfile_instructions(path):
        if instruction.keyword == "ARG" and image is None and "=" in instruction.arguments:
            name, _, default = instruction.arguments.partition("=")
            args[name.strip()] = default.strip().strip("'\"")
        elif instruction.keyword == "FROM":
            reference = instruction.arguments.split()[0]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), reference)
    if image is None:
        raise ValueError(f"{relative(path)} has no FROM")
    return image


@dataclass(frozen=True)
class Copy:
    source: str  # context-relative, as written (may end with /)
    destination: str  # absolute path in the image
    line: int


def copies(path: Path) -> list[Copy]:
    result, workdir = [], "/"
    for instruction in dockerfile_instructions(path):
        if instruction.keyword == "WORKDIR":
            workdir = posixpath.join(workdir, instruction.arguments)
        elif instruction.keyword == "COPY":
            parts = [p for p in shlex.split(instruction.arguments) if not p.startswith("--")]
            *sources, destination = parts
            destination = posixpath.join(workdir, destination)
            for source in sources:
                result.append(Copy(source, destination, instruction.line))
    return result


def image_path(path: Path, repository_file: str) -> str | None:
    """Where a repository file lands in the image, following the COPY instructions; None if nowhere."""
    found = None
    for copy in copies(path):
        source = copy.source.rstrip("/")
        if copy.source.endswith("/") or (REPO_ROOT / source).is_dir():
            if repository_file.startswith(source + "/"):
                found = posixpath.join(copy.destination, repository_file[len(source) + 1:])
        elif repository_file == source:
            found = copy.destination if not copy.destination.endswith("/") else posixpath.join(
                copy.destination, posixpath.basename(source))
    return found


@dataclass(frozen=True)
class PipInstall:
    requirement_files: tuple[str, ...]  # image paths given with -r
    packages: tuple[str, ...]  # anything else named on the command line
    line: int


def pip_installs(path: Path) -> list[PipInstall]:
    """Each ``pip install`` of the RUN instructions, split at shell operators."""
    result = []
    for instruction in dockerfile_instructions(path):
        if instruction.keyword != "RUN":
            continue
        lexer = shlex.shlex(instruction.arguments, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        commands: list[list[str]] = [[]]
        for token in lexer:
            if token in ("&&", "||", ";", "|", "&", "(", ")", ";;"):
                commands.append([])
            else:
                commands[-1].append(token)
        for words in commands:
            for start in range(len(words) - 1):
                if words[start] in ("pip", "pip3") or words[start].endswith("/pip") or (
                        words[start] == "-m" and words[start + 1] == "pip"):
                    rest = words[start + 1:] if words[start] != "-m" else words[start + 2:]
                    if rest[:1] == ["install"]:
                        result.append(_pip_install(rest[1:], instruction.line))
                    break
    return result


def _pip_install(words: list[str], line: int) -> PipInstall:
    files, packages, index = [], [], 0
    while index < len(words):
        word = words[index]
        if word in ("-r", "--requirement", "-c", "--constraint"):
            if word in ("-r", "--requirement"):
                files.append(words[index + 1])
            index += 2
            continue
        if word.startswith("--requirement="):
            files.append(word.split("=", 1)[1])
        elif not word.startswith("-"):
            packages.append(word)
        index += 1
    return PipInstall(tuple(files), tuple(packages), line)


def ignore_file_keeps(ignore_file: Path, context_path: str) -> bool:
    """Whether a .dockerignore sends ``context_path`` (a file or folder) to the build: the last
    matching pattern decides, ``!`` re-includes, a pattern that matches a folder covers its content."""
    path = context_path.strip("/")
    kept = True
    for raw in ignore_file.read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        candidates = [path] + [posixpath.join(*path.split("/")[:i]) for i in range(1, path.count("/") + 1)]
        if any(fnmatch.fnmatchcase(c, pattern) and (pattern.count("/") == c.count("/") or "**" in pattern)
               for c in candidates):
            kept = negate
    return kept


# --- Python imports


LOCAL_ROOTS = {
    "loupe": REPO_ROOT / "loupe",
    "trainer": REPO_ROOT / "trainer_image" / "trainer",
    "functions": REPO_ROOT / "functions",
}


def _module_file(name: str) -> Path | None:
    if name == "function_app":
        return REPO_ROOT / "function_app.py"
    top, *rest = name.split(".")
    if top not in LOCAL_ROOTS:
        return None
    base = LOCAL_ROOTS[top].joinpath(*rest)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def third_party_imports(*start: str) -> dict[str, set[str]]:
    """Third-party module -> the repository files importing it, over every local module reachable
    from ``start`` (module names). Imports anywhere in a file count, lazy ones inside functions
    included: they run sooner or later. Local modules that don't exist (yet) are skipped."""
    seen: set[str] = set()
    found: dict[str, set[str]] = {}
    stack = list(start)
    while stack:
        module = stack.pop()
        if module in seen:
            continue
        seen.add(module)
        file = _module_file(module)
        if file is None:
            continue
        parts = module.split(".")
        stack.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages run first
        package = module if file.name == "__init__.py" else ".".join(parts[:-1])
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                names = [target] + [f"{target}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in LOCAL_ROOTS or top == "function_app":
                    stack.append(name)
                elif top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(name, set()).add(relative(file))
    return found


def direct_imports(files: list[Path], local_names: set[str]) -> dict[str, set[str]]:
    """Third-party module -> the files importing it, for imports written in ``files`` themselves
    (absolute imports; ``local_names`` and the repository's packages count as local)."""
    found: dict[str, set[str]] = {}
    local = local_names | set(LOCAL_ROOTS) | {"function_app"}
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in local and top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(name, set()).add(relative(file))
    return found


def _module_paths(module: str) -> tuple[str, ...]:
    path = module.replace(".", "/")
    return (path + "/__init__.py", path + ".py", path + "/")


@functools.cache
def _installed_files(distribution: str) -> tuple[str, ...]:
    return tuple(str(PurePosixPath(f)) for f in importlib.metadata.distribution(distribution).files or ())


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


@functools.cache
def distributions_of(module: str) -> frozenset[str]:
    """The installed distributions (canonical names) that provide ``module``: those whose files
    hold the deepest part of the dotted name, so that namespace packages (``azure.batch`` vs
    ``azure.storage.blob``) resolve to the right one. Empty when nothing installed provides it."""
    candidates = _packages_distributions().get(module.split(".")[0], [])
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        prefixes = _module_paths(".".join(parts[:depth]))
        owners = frozenset(canonicalize_name(d) for d in candidates
                           if any(f.startswith(prefixes) for f in _installed_files(d)))
        if owners:
            return owners
    return frozenset()
