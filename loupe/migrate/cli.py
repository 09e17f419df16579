"""The command line: ``python -m loupe.migrate customvision --source-endpoint URL --source-key KEY
[--target-endpoint URL] [--target-key KEY] [--project ID ...] [--train] [--quiet]``.

Exit codes: 0 every project copied; 1 some images (or a training) failed, rerun to retry them;
2 nothing could be done (a rejected key, an unreachable endpoint, an unknown project).
"""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Sequence

from loupe.settings import DEVELOPMENT_API_KEY

if TYPE_CHECKING:  # the SDK is imported when the command runs (a clear message when it is missing)
    from loupe.migrate.customvision import ProjectOutcome

# what `make serve` listens on (loupe/local/stack.py)
DEFAULT_TARGET = "http://127.0.0.1:7071"
SDK_HINT = "pip install azure-cognitiveservices-vision-customvision==3.1.1 msrest==0.7.1"


def _default_key() -> str:
    """The local Loupe's key: the first of LOUPE_API_KEYS, else the documented development key."""
    from loupe.settings import Settings

    try:
        keys = Settings().api_keys
    except ValueError:  # unrelated LOUPE_* settings that do not parse
        keys = []
    return keys[0] if keys else DEVELOPMENT_API_KEY


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m loupe.migrate",
                                  description="Copy projects from another service into Loupe.")
    commands = top.add_subparsers(dest="command", required=True)
    cv = commands.add_parser(
        "customvision", help="copy Custom Vision projects (tags, images, regions, metadata)",
        description="Copy Custom Vision projects from any Custom Vision endpoint (Azure's or another Loupe) "
                    "into a Loupe, with the Custom Vision SDK on both sides. A rerun copies nothing twice.")
    cv.add_argument("--source-endpoint", required=True, help="e.g. https://<resource>.cognitiveservices.azure.com")
    cv.add_argument("--source-key", required=True, help="the source's training key")
    cv.add_argument("--target-endpoint", default=DEFAULT_TARGET, help=f"default: {DEFAULT_TARGET} (make serve)")
    cv.add_argument("--target-key", default=None,
                    help="default: the first of LOUPE_API_KEYS, else the development key")
    cv.add_argument("--project", action="append", default=None, metavar="ID",
                    help="a source project id (repeat for several); default: every project")
    cv.add_argument("--train", action="store_true", help="start a training of each copied project")
    cv.add_argument("--quiet", action="store_true", help="no progress bar")
    return top


def _client(endpoint: str, key: str):
    from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
    from msrest.authentication import ApiKeyCredentials

    return CustomVisionTrainingClient(endpoint.rstrip("/"), ApiKeyCredentials(in_headers={"Training-key": key}))


def customvision(args: argparse.Namespace) -> int:
    try:
        from loupe.migrate.customvision import Endpoint, Migration, MigrationError
        from loupe.migrate.progress import progress
    except ImportError as exc:
        print(f"error: the Custom Vision SDK is not installed ({exc}); {SDK_HINT}", file=sys.stderr)
        return 2
    source = Endpoint("source", _client(args.source_endpoint, args.source_key), args.source_endpoint)
    target_key = args.target_key or _default_key()
    target = Endpoint("target", _client(args.target_endpoint, target_key), args.target_endpoint)
    migration = Migration(source, target, train=args.train,
                          progress=lambda total, name: progress(total, name, enabled=not args.quiet))
    try:
        outcomes = migration.run(args.project)
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _report(outcomes)


def _report(outcomes: list[ProjectOutcome]) -> int:
    copied, already = sum(o.copied for o in outcomes), sum(o.already for o in outcomes)
    failed = [f"{o.name}: {why}" for o in outcomes for why in o.failed]
    untrained = [f"{o.name}: {o.training}" for o in outcomes if not o.training_started]
    print(f"done: {len(outcomes)} projects, {copied} images copied, {already} already there, {len(failed)} failed")
    for line in (failed + untrained)[:50]:
        print(f"  failed: {line}", file=sys.stderr)
    if failed:
        print("error: not everything was copied; run the command again to retry what failed", file=sys.stderr)
    elif untrained:
        print("error: everything was copied, but a training was not started", file=sys.stderr)
    return 1 if failed or untrained else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "customvision":
        return customvision(args)
    return 2
