"""Read Bicep files through tree-sitter-bicep: a syntax tree, not regular expressions.

No Bicep compiler can run here (every distribution downloads the CLI from a CDN), so the infra
tests check what a parser can: syntax, and the values written in the templates (names, settings,
role ids, the autoscale formula).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import tree_sitter_bicep
from tree_sitter import Language, Node, Parser, Tree

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA = REPO_ROOT / "infra"


@functools.cache
def _parser() -> Parser:
    return Parser(Language(tree_sitter_bicep.language()))


def parse_bytes(source: bytes) -> Tree:
    return _parser().parse(source)


@functools.cache
def parse(path: Path) -> Tree:
    return parse_bytes(path.read_bytes())


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def text(node: Node) -> str:
    return node.text.decode()


def walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from walk(child)


def syntax_problems(tree: Tree) -> list[str]:
    """ERROR and MISSING nodes as 'line:column kind' (1-based), empty when the file parses cleanly."""
    return [
        f"{n.start_point[0] + 1}:{n.start_point[1] + 1} {'MISSING ' + n.type if n.is_missing else 'ERROR'}"
        for n in walk(tree.root_node)
        if n.type == "ERROR" or n.is_missing
    ]


def string_value(node: Node, interpolate: Callable[[str], str] | None = None) -> str:
    """The value of a Bicep string literal; ``interpolate`` renders each ``${expr}`` from its text."""
    if node.type != "string":
        raise ValueError(f"expected a string literal, got {node.type}: {text(node)!r}")
    parts: list[str] = []
    for child in node.children:
        if child.type == "string_content":
            parts.append(text(child))
        elif child.type == "escape_sequence":
            parts.append({"\\n": "\n", "\\t": "\t", "\\r": "\r", "\\\\": "\\", "\\'": "'", "\\$": "$"}[text(child)])
        elif child.type == "interpolation":
            expression = text(child)[2:-1].strip()
            if interpolate is None:
                raise ValueError(f"string has an interpolation ${{{expression}}}: {text(node)!r}")
            parts.append(interpolate(expression))
    return "".join(parts)


def property_key(prop: Node) -> str:
    key = prop.children[0]
    if key.type == "string":  # quoted key, possibly interpolated ('${identityId}'): keep ${...} as written
        return string_value(key, interpolate=lambda expression: "${" + expression + "}")
    return text(key)


def object_properties(obj: Node) -> list[tuple[str, Node]]:
    """(key, value node) of each property of an object literal, in order."""
    if obj.type != "object":
        raise ValueError(f"expected an object, got {obj.type}")
    props = []
    for prop in obj.named_children:
        if prop.type == "object_property":
            props.append((property_key(prop), prop.children[-1]))
    return props


def get_path(obj: Node, *keys: str) -> Node:
    """Follow object property keys: get_path(resource_body, 'properties', 'scaleSettings')."""
    node = obj
    for key in keys:
        matches = [value for name, value in object_properties(node) if name == key]
        if len(matches) != 1:
            raise KeyError(f"{key!r} found {len(matches)} times under {text(node)[:80]!r}")
        node = matches[0]
    return node


def array_items(node: Node) -> list[Node]:
    if node.type != "array":
        raise ValueError(f"expected an array, got {node.type}")
    return [child for child in node.named_children if child.type not in ("comment",)]


@dataclass(frozen=True)
class Declaration:
    kind: str  # param | var | output | resource | module
    name: str
    node: Node  # the declaration
    value: Node | None  # default value / assigned value / body (object) / None

    @property
    def decorators(self) -> list[str]:
        """Texts of the decorators directly before the declaration (e.g. '@secure()')."""
        prev = self.node.prev_named_sibling
        if prev is not None and prev.type == "decorators":
            return [text(d) for d in prev.named_children]
        return []


_KINDS = {
    "parameter_declaration": "param",
    "variable_declaration": "var",
    "output_declaration": "output",
    "resource_declaration": "resource",
    "module_declaration": "module",
}


def declarations(tree: Tree, kind: str | None = None) -> list[Declaration]:
    found = []
    for node in tree.root_node.named_children:
        decl_kind = _KINDS.get(node.type)
        if decl_kind is None or (kind is not None and decl_kind != kind):
            continue
        name = text(node.child_by_field_name("name") or next(c for c in node.named_children if c.type == "identifier"))
        value: Node | None = None
        if "=" in [c.type for c in node.children]:
            value = node.children[[c.type for c in node.children].index("=") + 1]
        found.append(Declaration(decl_kind, name, node, value))
    return found


def declaration(tree: Tree, kind: str, name: str) -> Declaration:
    matches = [d for d in declarations(tree, kind) if d.name == name]
    if len(matches) != 1:
        raise KeyError(f"{kind} {name!r} declared {len(matches)} times")
    return matches[0]


def resource_type(decl: Declaration) -> str:
    """'Microsoft.Batch/batchAccounts/pools@2025-06-01' (or a nested child's short type 'config')."""
    return string_value(next(c for c in decl.node.named_children if c.type == "string"))


def body(value: Node) -> Node:
    """The object of a resource/module value, looking through `if (...)` and `[for ...: {...}]`."""
    if value.type == "object":
        return value
    for node in walk(value):
        if node.type == "object":
            return node
    raise ValueError(f"no object body in {text(value)[:80]!r}")


def all_resources(tree: Tree) -> list[tuple[str, Node]]:
    """(type string, body object) of every resource, nested children included."""
    found = []
    for node in walk(tree.root_node):
        if node.type == "resource_declaration":
            type_node = next(c for c in node.named_children if c.type == "string")
            found.append((string_value(type_node), body(node.children[-1])))
    return found
