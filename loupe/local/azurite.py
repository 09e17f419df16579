"""Starting Azurite (the npm package pinned in package.json) and waiting until it answers."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from loupe.paths import REPO_ROOT

# Azurite's well-known development account (public, documented by Microsoft).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def connection_string(blob_port: int, queue_port: int, table_port: int, host: str = "127.0.0.1") -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://{host}:{blob_port}/{ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue_port}/{ACCOUNT};"
        f"TableEndpoint=http://{host}:{table_port}/{ACCOUNT};"
    )


def azurite_binary() -> str:
    local = REPO_ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found:
        return found
    raise FileNotFoundError("Azurite is not installed: run `npm ci` in the repository (make does it for you)")


class Azurite:
    def __init__(self, *, blob_port: int = 10000, queue_port: int = 10001, table_port: int = 10002,
                 location: Path | None = None, in_memory: bool = False, log_file: Path | None = None) -> None:
        self.blob_port, self.queue_port, self.table_port = blob_port, queue_port, table_port
        self.location = location
        self.in_memory = in_memory
        self.log_file = log_file
        self.process: subprocess.Popen | None = None

    @classmethod
    def on_free_ports(cls, **kwargs) -> "Azurite":
        return cls(blob_port=free_port(), queue_port=free_port(), table_port=free_port(), **kwargs)

    @property
    def connection_string(self) -> str:
        return connection_string(self.blob_port, self.queue_port, self.table_port)

    def start(self, timeout: float = 30.0) -> "Azurite":
        args = [
            azurite_binary(), "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry",
            "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1",
            "--blobPort", str(self.blob_port), "--queuePort", str(self.queue_port), "--tablePort", str(self.table_port),
        ]
        if self.in_memory:
            args.append("--inMemoryPersistence")
        if self.location is not None:
            self.location.mkdir(parents=True, exist_ok=True)
            args += ["--location", str(self.location)]
        output = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        self.process = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT, cwd=self.location or REPO_ROOT,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Azurite exited at start with code {self.process.returncode} "
                                   f"(are ports {self.blob_port}-{self.table_port} in use?)")
            if all(port_open(p) for p in (self.blob_port, self.queue_port, self.table_port)):
                return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"Azurite did not open its ports within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
