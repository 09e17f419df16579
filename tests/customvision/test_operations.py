"""Every operation of the Custom Vision SDK 3.1.1 (52 training, 8 prediction) has a route, read
from the SDK's own source: its URL templates and HTTP methods."""
from __future__ import annotations

import importlib
import inspect
import re

import pytest
import requests

from tests.conftest import TEST_API_KEY

_CLIENT = re.compile(r"self\._client\.(get|post|put|delete|patch)\(")
_FAMILIES = {
    "training": ("azure.cognitiveservices.vision.customvision.training.operations._custom_vision_training_client_operations",
                 "/customvision/v3.4-preview/training"),
    "prediction": ("azure.cognitiveservices.vision.customvision.prediction.operations."
                   "_custom_vision_prediction_client_operations", "/customvision/v3.1/prediction"),
}
SAMPLE_ID = "6b4b9d8e-0e7b-4b7f-9d51-1b7a1d2c3e4f"


def sdk_operations() -> list[tuple[str, str, str]]:
    """(operation, HTTP method, path) of every SDK operation, ids filled with a GUID."""
    found = []
    for family, (module_name, base) in _FAMILIES.items():
        module = importlib.import_module(module_name)
        mixin = next(cls for _, cls in inspect.getmembers(module, inspect.isclass) if cls.__module__ == module.__name__)
        for name, function in inspect.getmembers(mixin, inspect.isfunction):
            metadata = getattr(function, "metadata", None)
            if not metadata:
                continue
            method = _CLIENT.search(inspect.getsource(function)).group(1).upper()
            path = re.sub(r"\{[^}]+\}", lambda m: "prod" if m.group(0) == "{publishedName}" else SAMPLE_ID,
                          metadata["url"])
            found.append((f"{family}.{name}", method, base + path))
    return found


OPERATIONS = sdk_operations()


def test_the_sdk_has_sixty_operations():
    assert len(OPERATIONS) == 60
    assert sum(op.startswith("prediction.") for op, _, _ in OPERATIONS) == 8


@pytest.mark.parametrize(("operation", "method", "path"), OPERATIONS, ids=[op for op, _, _ in OPERATIONS])
def test_every_operation_has_a_route(api_server, operation, method, path):
    """Called for a project that does not exist: a route of Loupe's answers with a Custom Vision
    code (NotFoundProject, a 400 about the request, ...), never the router's own 404 or 405."""
    response = requests.request(method, api_server.url + path, headers={"Training-Key": TEST_API_KEY},
                                timeout=30)
    assert response.status_code not in (405, 500), (operation, response.status_code, response.text)
    body = response.json() if response.content else {}
    body = body if isinstance(body, dict) else {}
    assert body.get("code") != "NotFound" or "Resource not found" not in body.get("message", ""), \
        (operation, response.text)
    assert response.status_code < 500 and (response.status_code >= 400 or response.status_code == 200), \
        (operation, response.status_code)
