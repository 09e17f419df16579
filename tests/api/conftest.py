"""Shared fixtures of the API tests."""
from __future__ import annotations

import pytest
import requests

from tests.conftest import TEST_API_KEY

API = "api-version=2023-04-01-preview"


@pytest.fixture
def http(api_server):
    """``http(method, path, **requests kwargs)`` with the key and api-version added."""
    session = requests.Session()
    session.headers["Ocp-Apim-Subscription-Key"] = TEST_API_KEY

    def call(method: str, path: str, **kwargs):
        sep = "&" if "?" in path else "?"
        return session.request(method, f"{api_server.url}{path}{sep}{API}", timeout=60, **kwargs)

    return call
