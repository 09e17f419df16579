"""The wire conventions over HTTP (docs/wire-contract.md#conventions): key check, api-version, slashes, envelope, OpenAPI."""
from __future__ import annotations

import requests

from tests.conftest import TEST_API_KEY

V = "api-version=2023-04-01-preview"


def test_missing_or_wrong_key_is_401_in_the_gateway_shape(api_server):
    for headers in ({}, {"Ocp-Apim-Subscription-Key": "wrong"}, {"Ocp-Apim-Subscription-Key": TEST_API_KEY + "x"},
                    {"Authorization": f"Bearer {TEST_API_KEY}"}):
        response = requests.get(f"{api_server.url}/computervision/datasets?{V}", headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "401"
        assert response.json()["error"]["message"].startswith("Access denied due to invalid subscription key")
        assert 'name="Ocp-Apim-Subscription-Key"' in response.headers["WWW-Authenticate"]
    # unknown routes under the API are not revealed without a key
    assert requests.get(f"{api_server.url}/computervision/nothing?{V}", timeout=10).status_code == 401


def test_header_name_is_case_insensitive(api_server):
    response = requests.get(f"{api_server.url}/computervision/datasets?{V}",
                            headers={"ocp-apim-subscription-key": TEST_API_KEY}, timeout=10)
    assert response.status_code == 200


def test_api_version_is_required_and_checked(api_server):
    key = {"Ocp-Apim-Subscription-Key": TEST_API_KEY}
    missing = requests.get(f"{api_server.url}/computervision/datasets", headers=key, timeout=10)
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "MissingApiVersionParameter"
    unknown = requests.get(f"{api_server.url}/computervision/datasets?api-version=1999-01-01", headers=key, timeout=10)
    assert unknown.status_code == 400
    assert "2023-04-01-preview" in unknown.json()["error"]["message"]
    for version in ("2023-02-01-preview", "2023-04-01-preview", "2023-10-01"):
        ok = requests.get(f"{api_server.url}/computervision/datasets?api-version={version}", headers=key, timeout=10)
        assert ok.status_code == 200


def test_double_slashes_route_like_single_ones(api_server):
    key = {"Ocp-Apim-Subscription-Key": TEST_API_KEY}
    response = requests.get(f"{api_server.url}/computervision//datasets?{V}", headers=key, timeout=10)
    assert response.status_code == 200
    assert "value" in response.json()


def test_unknown_route_and_method_answer_json(api_server):
    key = {"Ocp-Apim-Subscription-Key": TEST_API_KEY}
    unknown = requests.get(f"{api_server.url}/computervision/nothing?{V}", headers=key, timeout=10)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "NotFound"
    wrong = requests.post(f"{api_server.url}/computervision/datasets/x?{V}", headers=key, timeout=10)
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "MethodNotAllowed"


def test_bodies_must_be_json_objects(api_server):
    key = {"Ocp-Apim-Subscription-Key": TEST_API_KEY}
    url = f"{api_server.url}/computervision/datasets/body-test?{V}"
    cases = [
        (b"", {"Content-Type": "application/json"}, "empty"),
        (b"{not json", {"Content-Type": "application/json"}, "not valid JSON"),
        (b"[1, 2]", {"Content-Type": "application/json"}, "must be a JSON object"),
        (b"\xff\xfe{}", {"Content-Type": "application/json"}, "not UTF-8"),
        (b"[" * 100000 + b"]" * 100000, {"Content-Type": "application/json"}, "nested too deeply"),
        (b'{"annotationKind": 1}', {"Content-Type": "application/json-patch+json"}, "annotationKind"),
    ]
    for body, headers, expected in cases:
        response = requests.put(url, data=body, headers={**key, **headers}, timeout=10)
        assert response.status_code == 400, (body[:20], response.text)
        assert expected in response.json()["error"]["message"], response.text
    wrong_type = requests.put(url, data=b"{}", headers={**key, "Content-Type": "text/plain"}, timeout=10)
    assert wrong_type.status_code == 415
    assert wrong_type.json()["error"]["code"] == "InvalidRequest"


def test_keys_given_twice_in_different_case_are_refused(api_server):
    key = {"Ocp-Apim-Subscription-Key": TEST_API_KEY, "Content-Type": "application/json"}
    body = b'{"annotationKind": "imageClassification", "AnnotationKind": "imageObjectDetection", "annotationFileUris": ["https://a.blob.core.windows.net/c/x.json"]}'
    response = requests.put(f"{api_server.url}/computervision/datasets/twice?{V}", data=body, headers=key, timeout=10)
    assert response.status_code == 400
    assert "given twice" in response.text


def test_openapi_document_is_served(api_server):
    response = requests.get(f"{api_server.url}/openapi.json", timeout=10)
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/computervision/datasets/{name}" in paths
    put = paths["/computervision/datasets/{name}"]["put"]
    schema = put["requestBody"]["content"]["application/json"]["schema"]
    assert "annotationKind" in schema["properties"]
