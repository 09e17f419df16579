"""The embedded default on one machine: Azurite, the HTTP app on uvicorn, the blob watcher that
stands in for Event Grid, the local job backend and the reconciler thread - one Services shared
by all of them, as in a Function App worker."""
from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

from loupe.api.app import create_app
from loupe.local.azurite import Azurite, port_open
from loupe.local.periodic import Periodic
from loupe.local.server import ServerThread
from loupe.local.watcher import BlobWatcher
from loupe.paths import REPO_ROOT
from loupe.services import Services
from loupe.settings import Settings

log = logging.getLogger(__name__)
AZURITE_PORTS = (10000, 10001, 10002)
DEFAULT_PORT = 7071


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LocalStack:
    def __init__(self, settings: Settings, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 data_dir: Path = REPO_ROOT / ".loupe") -> None:
        if settings.development_mode and not is_loopback(host):
            raise ValueError("without LOUPE_API_KEYS the development key is in use: the API listens on loopback only")
        self.settings = settings
        self.host, self.port = host, port
        self.data_dir = data_dir
        self.azurite: Azurite | None = None
        self.server: ServerThread | None = None
        self.watcher: BlobWatcher | None = None
        self.services: Services | None = None
        self.reconciler: Periodic | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _ensure_azurite(self) -> None:
        if not self.settings.uses_connection_string or "UseDevelopmentStorage=true" not in (
            self.settings.effective_connection_string
        ):
            return  # a real account or a custom Azurite: nothing to start
        if all(port_open(port) for port in AZURITE_PORTS):
            log.info("Azurite is already running on ports 10000-10002; using it")
            return
        if any(port_open(port) for port in AZURITE_PORTS):
            raise RuntimeError("some of ports 10000-10002 are taken by something that is not a full Azurite")
        self.azurite = Azurite(location=self.data_dir / "azurite", log_file=self.data_dir / "azurite.log")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.azurite.start()

    def start(self) -> "LocalStack":
        if port_open(self.port, "127.0.0.1" if self.host in ("0.0.0.0", "localhost") else self.host):
            raise RuntimeError(f"port {self.port} is in use: is `make serve` already running?")
        self._ensure_azurite()
        self.services = Services(self.settings).ready()
        self.server = ServerThread(create_app(self.services), host=self.host, port=self.port).start()
        self.watcher = BlobWatcher(self.services.drops).start()
        self.reconciler = Periodic("reconciler", self.settings.reconcile_interval_seconds,
                                   self.services.reconciler.run_once).start()
        return self

    def stop(self) -> None:
        for part in (self.reconciler, self.watcher, self.server):
            if part is not None:
                part.stop()
        if self.services is not None:
            self.services.close()
        if self.azurite is not None:
            self.azurite.stop()
