"""A small interpreter for the subset of the Azure Batch autoscale formula language Loupe uses.

It exists so the pool's formula (infra/app/batch.bicep) can be run against $PendingTasks scenarios
offline. Covered: `$var = expr;` statements, numbers, `$variables`, the system metric $PendingTasks
with GetSample(count | interval) and GetSamplePercent(interval), TimeInterval_Minute/_Second,
max/min/avg over numbers and sample vectors, + - * /, comparisons, the ternary `c ? a : b`
(evaluated lazily), and the deallocation keywords. Anything else is an error, so a formula that
uses more than this fails its tests instead of being half-understood.
Semantics follow Microsoft's "Create a formula to automatically scale compute nodes" article.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

# Batch takes a sample of each metric every 30 seconds.
SAMPLE_PERIOD_SECONDS = 30
DEALLOCATION_OPTIONS = ("requeue", "terminate", "taskcompletion", "retaineddata")
TIME_INTERVALS = {"TimeInterval_Second": 1, "TimeInterval_Minute": 60, "TimeInterval_Hour": 3600}


class FormulaError(ValueError):
    pass


@dataclass(frozen=True)
class Interval:
    seconds: float


@dataclass
class Metric:
    """Samples of a system metric, oldest first, one per SAMPLE_PERIOD_SECONDS."""

    samples: Sequence[float]

    def get_sample(self, arg: object) -> list[float]:
        if isinstance(arg, Interval):
            count = int(arg.seconds // SAMPLE_PERIOD_SECONDS)
            return list(self.samples[-count:]) if count else []
        if isinstance(arg, float) and arg.is_integer() and arg >= 1:
            return list(self.samples[-int(arg):])
        raise FormulaError(f"GetSample expects a sample count or a time interval, got {arg!r}")

    def get_sample_percent(self, arg: object) -> float:
        if not isinstance(arg, Interval):
            raise FormulaError(f"GetSamplePercent expects a time interval, got {arg!r}")
        expected = arg.seconds / SAMPLE_PERIOD_SECONDS
        return 100.0 * min(len(self.samples), expected) / expected


_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<var>\$[A-Za-z_][A-Za-z0-9_]*)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[=;(),?:.<>+\-*/]))"
)


def tokenize(source: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    source = source.rstrip()
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if not match or match.end() == pos:
            raise FormulaError(f"unexpected character at {pos}: {source[pos:pos + 20]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


@dataclass
class _Parser:
    tokens: list[tuple[str, str]]
    pos: int = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None, kind: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value) or (kind is not None and token[0] != kind):
            raise FormulaError(f"expected {value or kind} at token {self.pos}, got {token}")
        self.pos += 1
        return token

    def statements(self) -> list[tuple[str, tuple]]:
        result = []
        while self.peek() is not None:
            target = self.take(kind="var")[1]
            self.take("=")
            result.append((target, self.expression()))
            self.take(";")
        return result

    def expression(self) -> tuple:
        condition = self.comparison()
        if self.peek() == ("op", "?"):
            self.take("?")
            when_true = self.expression()
            self.take(":")
            return ("ternary", condition, when_true, self.expression())
        return condition

    def comparison(self) -> tuple:
        left = self.additive()
        token = self.peek()
        if token and token[1] in ("==", "!=", "<", "<=", ">", ">="):
            self.take()
            return ("binary", token[1], left, self.additive())
        return left

    def additive(self) -> tuple:
        left = self.term()
        while (token := self.peek()) and token[1] in ("+", "-"):
            self.take()
            left = ("binary", token[1], left, self.term())
        return left

    def term(self) -> tuple:
        left = self.unary()
        while (token := self.peek()) and token[1] in ("*", "/"):
            self.take()
            left = ("binary", token[1], left, self.unary())
        return left

    def unary(self) -> tuple:
        if self.peek() == ("op", "-"):
            self.take()
            return ("negate", self.unary())
        return self.postfix()

    def postfix(self) -> tuple:
        node = self.primary()
        while self.peek() == ("op", "."):
            self.take(".")
            method = self.take(kind="name")[1]
            node = ("method", node, method, self.arguments())
        return node

    def arguments(self) -> list[tuple]:
        self.take("(")
        args = []
        if self.peek() != ("op", ")"):
            args.append(self.expression())
            while self.peek() == ("op", ","):
                self.take(",")
                args.append(self.expression())
        self.take(")")
        return args

    def primary(self) -> tuple:
        kind, value = self.take()
        if kind == "number":
            return ("number", float(value))
        if kind == "var":
            return ("var", value)
        if kind == "name":
            if self.peek() == ("op", "("):
                return ("call", value, self.arguments())
            return ("name", value)
        if value == "(":
            inner = self.expression()
            self.take(")")
            return inner
        raise FormulaError(f"unexpected token {value!r}")


def parse(source: str) -> list[tuple[str, tuple]]:
    return _Parser(tokenize(source)).statements()


def _numbers(values: Sequence[object]) -> list[float]:
    flat: list[float] = []
    for value in values:
        if isinstance(value, list):
            flat.extend(value)
        elif isinstance(value, float):
            flat.append(value)
        else:
            raise FormulaError(f"expected numbers or sample vectors, got {value!r}")
    if not flat:
        raise FormulaError("aggregate of no values")
    return flat


_FUNCTIONS = {
    "max": lambda args: max(_numbers(args)),
    "min": lambda args: min(_numbers(args)),
    "avg": lambda args: sum(_numbers(args)) / len(_numbers(args)),
}


@dataclass
class Evaluation:
    metrics: dict[str, Metric]
    variables: dict[str, object] = field(default_factory=dict)

    def run(self, source: str) -> dict[str, object]:
        for target, expression in parse(source):
            if target in self.metrics:
                raise FormulaError(f"cannot assign the read-only metric {target}")
            self.variables[target] = self.eval(expression)
        return self.variables

    def eval(self, node: tuple) -> object:
        kind = node[0]
        if kind == "number":
            return node[1]
        if kind == "var":
            name = node[1]
            if name in self.metrics:
                return self.metrics[name]
            if name not in self.variables:
                raise FormulaError(f"{name} is read before it is assigned")
            return self.variables[name]
        if kind == "name":
            name = node[1]
            if name in TIME_INTERVALS:
                return Interval(TIME_INTERVALS[name])
            if name in DEALLOCATION_OPTIONS:
                return name
            raise FormulaError(f"unknown identifier {name!r}")
        if kind == "ternary":
            return self.eval(node[2]) if self._truthy(self.eval(node[1])) else self.eval(node[3])
        if kind == "negate":
            return -self._number(self.eval(node[1]))
        if kind == "binary":
            return self._binary(node[1], self.eval(node[2]), self.eval(node[3]))
        if kind == "call":
            if node[1] not in _FUNCTIONS:
                raise FormulaError(f"unknown function {node[1]!r}")
            return _FUNCTIONS[node[1]]([self.eval(arg) for arg in node[2]])
        if kind == "method":
            target, method, args = self.eval(node[1]), node[2], [self.eval(arg) for arg in node[3]]
            if not isinstance(target, Metric) or len(args) != 1:
                raise FormulaError(f"{method} needs a metric and one argument")
            if method == "GetSample":
                return target.get_sample(args[0])
            if method == "GetSamplePercent":
                return target.get_sample_percent(args[0])
            raise FormulaError(f"unknown metric method {method!r}")
        raise FormulaError(f"cannot evaluate {node!r}")

    @staticmethod
    def _number(value: object) -> float:
        if not isinstance(value, float):
            raise FormulaError(f"expected a number, got {value!r}")
        return value

    def _truthy(self, value: object) -> bool:
        return self._number(value) != 0.0

    def _binary(self, op: str, left: object, right: object) -> object:
        if op == "*" and isinstance(left, Interval):
            return Interval(left.seconds * self._number(right))
        if op == "*" and isinstance(right, Interval):
            return Interval(right.seconds * self._number(left))
        a, b = self._number(left), self._number(right)
        results = {
            "+": lambda: a + b,
            "-": lambda: a - b,
            "*": lambda: a * b,
            "/": lambda: a / b,
            "==": lambda: float(a == b),
            "!=": lambda: float(a != b),
            "<": lambda: float(a < b),
            "<=": lambda: float(a <= b),
            ">": lambda: float(a > b),
            ">=": lambda: float(a >= b),
        }
        return results[op]()


def evaluate(source: str, pending_tasks: Sequence[float]) -> dict[str, object]:
    """Run a formula with $PendingTasks samples (oldest first); returns every assigned variable."""
    return Evaluation(metrics={"$PendingTasks": Metric([float(s) for s in pending_tasks])}).run(source)
