"""Property-based fuzzing of the real server against its own /openapi.json (schemathesis).

Every operation the document lists is called with generated requests, valid and invalid ones
(positive and negative generation), with the API key; each answer must be no 5xx and must
conform to the document: a documented status, a documented content type, a body that matches the
documented schema. A client generated from the document can then trust it.

``fuzz_api`` is shared with benchmarks/fuzz_api.py, the longer run.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import TEST_API_KEY

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


@dataclass
class FuzzReport:
    requests: int = 0
    seconds: float = 0.0
    operations: int = 0
    failures: Counter = field(default_factory=Counter)  # check name -> count
    server_errors: int = 0
    examples: dict[str, str] = field(default_factory=dict)  # one example per (check, operation)

    def describe(self) -> str:
        lines = [f"{self.requests} requests over {self.operations} operations in {self.seconds:.1f} s; "
                 f"server errors: {self.server_errors}; failures by check: {dict(self.failures) or 'none'}"]
        lines += [f"  {key}: {text}" for key, text in sorted(self.examples.items())]
        return "\n".join(lines)


def _record(report: FuzzReport, label: str, failures: list[Failure], case, response) -> None:
    for failure in failures:
        check = failure.checks[0] if failure.checks else type(failure).__name__
        report.failures[check] += 1
        request = f"{case.meta.generation.mode.value if case.meta else ''} {case.method} {response.request.url} " \
                  f"headers={dict(case.headers or {})}"[:400]
        report.examples.setdefault(f"{check} {label}",
                                   f"{request} -> {response.status_code} {response.text[:300]!r}: {failure.title}")


def _run_operation(report: FuzzReport, operation, base_url: str, key: str, max_examples: int,
                   stop_at: float) -> None:
    session = requests.Session()
    label = f"{operation.method.upper()} {operation.path}"
    for mode in MODES:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=max_examples, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def call(case) -> None:
            if time.monotonic() > stop_at:
                return
            response = case.call(base_url=base_url, session=session,
                                 headers={"Ocp-Apim-Subscription-Key": key}, timeout=30)
            report.requests += 1
            report.server_errors += response.status_code >= 500
            try:
                case.validate_response(response, checks=CHECKS)
            except FailureGroup as group:
                _record(report, label, list(group.exceptions), case, response)
            except Failure as failure:
                _record(report, label, [failure], case, response)

        try:
            call()
        except Unsatisfiable:
            pass  # nothing of this operation can be made invalid (negative mode without a parameter)


def fuzz_api(base_url: str, key: str, *, max_examples: int, time_budget_s: float,
             progress: Callable[[str], None] = lambda line: None) -> FuzzReport:
    """Fuzz every operation of ``base_url``/openapi.json, ``max_examples`` per operation and mode,
    stopping new requests once ``time_budget_s`` is spent."""
    started = time.monotonic()
    report = FuzzReport()
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", timeout=30)
    for result in schema.get_all_operations():
        operation = result.ok()
        report.operations += 1
        _run_operation(report, operation, base_url, key, max_examples, started + time_budget_s)
        progress(f"{operation.method.upper()} {operation.path}: {report.requests} requests so far")
    report.seconds = time.monotonic() - started
    return report


def test_fuzzing_finds_no_server_error_and_no_schema_violation(api_server):
    report = fuzz_api(api_server.url, TEST_API_KEY, max_examples=12, time_budget_s=75)
    print(report.describe())
    assert report.operations >= 14  # every route of docs/wire-contract.md#endpoints is in the document
    assert report.requests >= 200
    assert report.server_errors == 0, report.describe()
    assert not report.failures, report.describe()
