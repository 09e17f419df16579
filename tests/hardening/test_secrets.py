"""No secret is ever printed: the real local host (`python -m loupe.local serve`) with an account key
in its connection string and API keys set registers a dataset and trains a model; nothing it or its
trainer logs carries the account key, an API key or a SAS signature. The trainer gets the host's
trainer settings (LOUPE_TRAINER_THREADS) in its real environment, and never the API keys."""
from __future__ import annotations

from pathlib import Path

import pytest

from loupe.local.azurite import ACCOUNT_KEY, Azurite
from tests.hardening.test_crash_recovery import HOST_KEY, HostProcess, trainer_pids

SECOND_KEY = "second-api-key-9a7e31"


@pytest.fixture
def own_azurite():
    instance = Azurite.on_free_ports(in_memory=True).start()
    yield instance
    instance.stop()


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def _trainer_logs(azurite: Azurite, model: str) -> dict[str, str]:
    from azure.storage.blob import BlobServiceClient

    container = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client("models")
    return {blob.name: container.download_blob(blob.name).readall().decode(errors="replace")
            for blob in container.list_blobs(name_starts_with=f"{model}/logs/")}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_no_log_line_carries_a_key_and_the_trainer_gets_its_settings(own_azurite, tmp_path):
    assert f"AccountKey={ACCOUNT_KEY}" in own_azurite.connection_string
    host = HostProcess(own_azurite, tmp_path, API_KEYS=f"{HOST_KEY},{SECOND_KEY}", TRAINER_THREADS="1")
    host.start()
    try:
        host.register("secret-set")
        _assert_no_secret({"host start-up and registration": host.output()})
        host.train("secret-model", "secret-set")
        pids = host.wait(lambda: trainer_pids(host), 120, "the trainer to start")
        environment = _environ(pids[0])
        assert environment.get("LOUPE_TRAINER_THREADS") == "1"
        assert "LOUPE_API_KEYS" not in environment
        final = host.wait(lambda: (m := host.model("secret-model"))["status"] in ("succeeded", "failed") and m,
                          240, "the model to end")
        assert final["status"] == "succeeded", final
        logs = host.wait(lambda: _trainer_logs(own_azurite, "secret-model"), 30, "the trainer log in storage")
    finally:
        host.stop()
    printed = {"host": host.output(), **logs}
    printed.update({p.name: p.read_text(errors="replace") for p in (tmp_path / "jobs").glob("*.log")})
    assert "Loupe is running." in printed["host"] and "http://127.0.0.1" in printed["host"]
    assert any("secret-model" in text for name, text in logs.items()), "the trainer log should be kept"
    _assert_no_secret(printed)


def _assert_no_secret(printed: dict[str, str]) -> None:
    for name, text in printed.items():
        for secret in (ACCOUNT_KEY, HOST_KEY, SECOND_KEY, "AccountKey", "sig="):
            assert secret not in text, f"{secret[:12]}... printed in {name}"
