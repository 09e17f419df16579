"""The OpenAPI document is true to the server: what it declares is what the server enforces, so a
client generated from /openapi.json is not refused for what the document never said."""
from __future__ import annotations

import re

import pytest
import requests

from loupe.api.middleware import SUPPORTED_API_VERSIONS
from loupe.datasets.requests import NAME_MAX_LENGTH, NAME_PATTERN
from tests.conftest import TEST_API_KEY

KEY = {"Ocp-Apim-Subscription-Key": TEST_API_KEY}
METHODS = ("get", "put", "post", "patch", "delete")


@pytest.fixture(scope="module")
def document(api_server) -> dict:
    response = requests.get(f"{api_server.url}/openapi.json", timeout=10)
    assert response.status_code == 200
    return response.json()


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def parameter(operation: dict, name: str) -> dict:
    found = [p for p in operation.get("parameters", []) if p["name"] == name]
    assert len(found) == 1, (name, operation.get("operationId"))
    return found[0]


def test_every_operation_declares_api_version_and_the_key(document):
    assert document["components"]["securitySchemes"]["apiKey"] == {
        **document["components"]["securitySchemes"]["apiKey"],
        "type": "apiKey", "in": "header", "name": "Ocp-Apim-Subscription-Key"}
    count = 0
    for path, _, operation in operations(document):
        assert path.startswith("/computervision/")
        version = parameter(operation, "api-version")
        assert version["in"] == "query" and version["required"] is True
        assert version["schema"]["enum"] == list(SUPPORTED_API_VERSIONS)
        assert operation["security"] == [{"apiKey": []}]
        count += 1
    # docs/wire-contract.md#endpoints (16 with the datasets :import route) + the 3 export routes (docs/exports.md#api)
    assert count == 19


def test_errors_are_documented_in_the_envelope_and_422_is_gone(document):
    assert "422" not in str(document["paths"]) and "HTTPValidationError" not in str(document)
    envelope = document["components"]["schemas"]["ErrorResponse"]
    assert envelope["required"] == ["error"]
    for _, _, operation in operations(document):
        for status in ("400", "401"):
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}
    expected = {
        ("/computervision/datasets/{name}", "put"): {"409", "415"},
        ("/computervision/datasets/{name}", "get"): {"404"},
        ("/computervision/datasets/{name}", "patch"): {"404", "412", "415"},
        ("/computervision/datasets/{name}", "delete"): {"404", "412"},
        ("/computervision/models/{name}", "put"): {"409"},
        ("/computervision/models/{model}/evaluations/{name}", "put"): {"404", "409"},
        ("/computervision/imageanalysis:analyze", "post"): {"404"},
    }
    for (path, method), statuses in expected.items():
        assert statuses <= set(document["paths"][path][method]["responses"]), (path, method)


def test_names_are_declared_with_the_rule_the_server_applies(document, api_server):
    for path, _, operation in operations(document):
        for name in re.findall(r"{(\w+)}", path):
            schema = parameter(operation, name)["schema"]
            assert (schema["pattern"], schema["maxLength"]) == (NAME_PATTERN.pattern, NAME_MAX_LENGTH), path
    analyze = document["paths"]["/computervision/imageanalysis:analyze"]["post"]
    model_name = parameter(analyze, "model-name")
    assert model_name["required"] is True and model_name["schema"]["pattern"] == NAME_PATTERN.pattern
    version = f"api-version={SUPPORTED_API_VERSIONS[0]}"
    # the longest name the schema allows is a name (404: no such model), one more character is not (400)
    allowed = requests.get(f"{api_server.url}/computervision/models/{'a' * NAME_MAX_LENGTH}?{version}",
                           headers=KEY, timeout=10)
    assert allowed.status_code == 404
    refused = requests.get(f"{api_server.url}/computervision/models/{'a' * (NAME_MAX_LENGTH + 1)}?{version}",
                           headers=KEY, timeout=10)
    assert refused.status_code == 400 and refused.json()["error"]["target"] == "name"


def test_paging_bounds_are_declared_as_enforced(document, api_server):
    operation = document["paths"]["/computervision/datasets"]["get"]
    top = parameter(operation, "top")["schema"]
    skip = parameter(operation, "skip")["schema"]
    assert (top["minimum"], top["maximum"], skip["minimum"]) == (1, 30, 0)
    url = f"{api_server.url}/computervision/datasets?api-version={SUPPORTED_API_VERSIONS[0]}"
    assert requests.get(f"{url}&top={top['maximum']}&skip=0", headers=KEY, timeout=10).status_code == 200
    for bad in (f"top={top['maximum'] + 1}", f"top={top['minimum'] - 1}", f"skip={skip['minimum'] - 1}"):
        assert requests.get(f"{url}&{bad}", headers=KEY, timeout=10).status_code == 400, bad


def test_the_analyze_bodies_are_described(document):
    body = document["paths"]["/computervision/imageanalysis:analyze"]["post"]["requestBody"]
    content = body["content"]
    assert {"image/*", "application/octet-stream", "multipart/form-data", "application/json"} <= set(content)
    assert content["application/octet-stream"]["schema"]["format"] == "binary"
    assert content["application/json"]["schema"]["required"] == ["url"]


def test_request_bodies_declare_their_bounds(document):
    model = document["paths"]["/computervision/models/{name}"]["put"]["requestBody"]["content"]
    budget = model["application/json"]["schema"]["properties"]["trainingParameters"]["properties"]["timeBudgetInHours"]
    assert (budget["minimum"], budget["maximum"]) == (1, 1344)  # docs/wire-contract.md#limits
    dataset = document["paths"]["/computervision/datasets/{name}"]["put"]["requestBody"]["content"]
    properties = dataset["application/json"]["schema"]["properties"]
    assert "maxProperties" in str(properties["customProperties"])
    assert "imageClassification" in str(properties["annotationKind"])
