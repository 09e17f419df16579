"""The composition root: parts are built on first use in any order, once, and closed."""
from __future__ import annotations

import threading


def test_any_part_can_be_built_first(make_settings):
    """A Function App worker's first request may be an analyze call: building the predictors
    first builds the models service and the backend under the same lock, without deadlocking."""
    from loupe.services import Services

    services = Services(make_settings())
    built = {}
    worker = threading.Thread(target=lambda: built.update(predictors=services.predictors), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "building the predictors first deadlocked"
    assert built["predictors"] is services.predictors  # built once
    assert services.models.backend is services.backend is services.evaluations.backend
    services.close()


def test_close_shuts_the_backend_down_once(make_settings):
    from loupe.services import Services

    services = Services(make_settings())
    services.close()  # nothing built: nothing to shut down
    backend = services.backend
    shut = []
    backend.shutdown = lambda: shut.append(True)  # the LocalBackend's own shutdown is tested with real trainers
    services.close()
    services.close()
    assert shut == [True]
