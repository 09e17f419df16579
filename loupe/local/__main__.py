"""``python -m loupe.local serve|run``: the local stack (make serve) and the demo (make run)."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from urllib.parse import urlsplit

from loupe.local.stack import DEFAULT_PORT, LocalStack
from loupe.settings import DEVELOPMENT_API_KEY, get_settings


def _banner(stack: LocalStack) -> str:
    settings = stack.settings
    key = "(from LOUPE_API_KEYS)" if not settings.development_mode else DEVELOPMENT_API_KEY
    return "\n".join([
        "Loupe is running.",
        f"  endpoint:           {stack.endpoint}   (API under {stack.endpoint}/computervision, docs at /docs)",
        f"  API key:            {key}   (header Ocp-Apim-Subscription-Key)",
        f"  storage:            {_storage(stack)}",
        f"  drop datasets into: container '{settings.datasets_container}' as <dataset-name>/<file>.json + images",
        "Press Ctrl+C to stop.",
    ])


def _storage(stack: LocalStack) -> str:
    """The account and its blob endpoint - never the connection string (its AccountKey) or a SAS."""
    storage = stack.services.storage
    endpoint = urlsplit(storage.blob_account_url)._replace(query="", fragment="").geturl()
    return f"account '{storage.account_name}', blobs at {endpoint}"


def serve(args: argparse.Namespace) -> int:
    stack = LocalStack(get_settings(), host=args.host, port=args.port).start()
    print(_banner(stack), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    from loupe.local.demo import run_demo

    # a SIGTERM unwinds like Ctrl+C, so the Azurite and trainer processes are stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return run_demo(port=args.port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loupe.local", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="start Azurite, the API and the blob watcher; keep them up")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve_parser.set_defaults(func=serve)
    run_parser = sub.add_parser("run", help="the demo: drop the sample datasets, register, train, evaluate, predict")
    run_parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    run_parser.set_defaults(func=run)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.command == "serve" else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    for noisy in ("azure", "uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
