"""Session-wide real components: an in-memory Azurite on free loopback ports, and factories for
settings, services and a uvicorn server running the real app."""
from __future__ import annotations

import itertools
import os
import uuid
from typing import Iterator

import pytest

from loupe.local.azurite import Azurite
from loupe.settings import Settings

TEST_API_KEY = "test-key-0123456789"
# Detectors trained through the API stop at this many iterations (the CPU recipe: 150 or more):
# the tests check flows and agreement, not accuracy (benchmarks/detection_quality.py does), and a
# detector was the suite's longest wait (docs/training.md#detectors)
TEST_DETECTOR_CPU_ITERATIONS = 50

# Tests must not pick up a developer's environment.
for _name in [n for n in os.environ if n.startswith("LOUPE_")]:
    del os.environ[_name]


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    instance = Azurite.on_free_ports(in_memory=True).start()
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def make_settings(azurite):
    def make(**overrides) -> Settings:
        # no standby trainer by default: the suite builds short-lived hosts that never train; the
        # session's host and the hosts run as processes keep the default (local_warm_trainer)
        values = dict(storage_connection_string=azurite.connection_string, api_keys=[TEST_API_KEY],
                      detector_cpu_max_iterations=TEST_DETECTOR_CPU_ITERATIONS, local_warm_trainer=False)
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture(scope="session")
def settings(make_settings) -> Settings:
    return make_settings(local_warm_trainer=True)


@pytest.fixture(scope="session")
def services(settings):
    from loupe.services import Services

    services = Services(settings).ready()
    yield services
    services.close()


@pytest.fixture(scope="session")
def api_server(services):
    from loupe.api.app import create_app
    from loupe.local.azurite import free_port
    from loupe.local.server import ServerThread

    server = ServerThread(create_app(services), port=free_port()).start()
    yield server
    server.stop()


_counter = itertools.count()


@pytest.fixture
def unique_name():
    """Names unique across the session's shared Azurite."""

    def make(prefix: str = "t") -> str:
        return f"{prefix}-{next(_counter)}-{uuid.uuid4().hex[:6]}"

    return make


@pytest.fixture(scope="session")
def compact_detector(api_server):
    """A Custom Vision detector (compact domain) trained once for the session and shared by the
    prediction tests and the export tests: a detector without a test set is the suite's longest
    training (its estimate pass doubles it), and neither module changes the iteration (the export
    tests' exports start from none: the prediction tests export nothing). Defined here, above both
    folders, so that pytest caches one instance (a fixture imported into two conftests is two)."""
    from tests.customvision.conftest import train_compact_detector

    return train_compact_detector(api_server)
