"""The long fuzz run: schemathesis against a private Loupe's /openapi.json (the API in its own
process, in-memory Azurite), positive and negative generation for every operation, the checks of
tests/hardening/test_fuzz.py (no 5xx; status codes, content types and bodies as documented).

    .venv/bin/python benchmarks/fuzz_api.py [--examples 300] [--minutes 5]

Prints requests sent, failures by check (one example each) and the duration; exits 1 on any failure.
"""
from __future__ import annotations

import argparse
import sys

from _stack import KEY, BenchStack

from tests.hardening.test_fuzz import fuzz_api


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=300, help="examples per operation and generation mode")
    parser.add_argument("--minutes", type=float, default=5.0, help="stop sending new requests after this long")
    args = parser.parse_args()
    with BenchStack() as stack:
        report = fuzz_api(stack.endpoint, KEY, max_examples=args.examples, time_budget_s=args.minutes * 60,
                          progress=lambda line: print(line, flush=True))
    print(report.describe())
    print(f"requests: {report.requests}  server errors: {report.server_errors}  "
          f"schema violations: {sum(report.failures.values()) - report.failures.get('not_a_server_error', 0)}  "
          f"duration: {report.seconds:.1f} s  ({report.requests / max(report.seconds, 1e-9):.0f} requests/s)")
    return 1 if report.failures or report.server_errors else 0


if __name__ == "__main__":
    sys.exit(main())
