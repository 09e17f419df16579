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


def test_405_names_every_allowed_method_in_allow(http):
    cases = {
        "/computervision/datasets/allow-test": ("TRACE", "POST"),
        "/computervision/datasets": ("TRACE", "PUT", "DELETE"),
        "/computervision/models/allow-test": ("TRACE", "PATCH"),
        "/computervision/models/allow-test:cancel": ("TRACE", "PATCH"),
        "/computervision/models/m/evaluations/e": ("TRACE", "POST"),
        "/computervision/imageanalysis:analyze": ("TRACE", "GET", "PUT"),
    }
    allowed = {
        "/computervision/datasets/allow-test": "DELETE, GET, PATCH, PUT",
        "/computervision/datasets": "GET",
        "/computervision/models/allow-test": "DELETE, GET, PUT",
        # {name} also matches "allow-test:cancel" (an invalid name: those routes answer 400)
        "/computervision/models/allow-test:cancel": "DELETE, GET, POST, PUT",
        "/computervision/models/m/evaluations/e": "DELETE, GET, PUT",
        "/computervision/imageanalysis:analyze": "POST",
    }
    for path, methods in cases.items():
        for method in methods:
            response = http(method, path)
            assert response.status_code == 405, (method, path, response.text)
            assert response.headers.get("Allow") == allowed[path], (method, path, response.headers)
            assert response.json()["error"]["code"] == "MethodNotAllowed"


def test_analyze_refuses_an_invalid_model_name_as_models_does(http):
    for name in ("bad name!", "-starts-with-dash", "a" * 256, "a.b$"):
        analyzed = http("POST", "/computervision/imageanalysis:analyze", params={"model-name": name},
                        data=b"\xff\xd8not-a-jpeg", headers={"Content-Type": "image/jpeg"})
        listed = http("GET", f"/computervision/models/{requests.utils.quote(name, safe='')}")
        assert analyzed.status_code == 400, (name, analyzed.text)
        assert analyzed.json() == listed.json(), name
        assert analyzed.headers["x-ms-error-code"] == "InvalidRequest"


def test_user_input_in_messages_is_bounded(http):
    huge = "m" * 10_000
    cases = [
        ({"model-name": huge}, {"Content-Type": "image/jpeg"}),  # an invalid name: a 400
        ({"features": huge}, {"Content-Type": "image/jpeg"}),  # standard-model features
        ({"model-name": "no-such-model"}, {"Content-Type": "text/" + huge}),  # an unsupported type
    ]
    for params, headers in cases:
        response = http("POST", "/computervision/imageanalysis:analyze", params=params, data=b"x", headers=headers)
        assert response.status_code == 400, response.text
        message = response.json()["error"]["message"]
        assert len(message) < 800 and huge not in message, message[:400]
    # a valid but long name of a model that does not exist: 404, its name bounded
    long_name = "n" * 255
    missing = http("POST", "/computervision/imageanalysis:analyze", params={"model-name": long_name},
                   data=b"\xff\xd8x", headers={"Content-Type": "image/jpeg"})
    assert missing.status_code == 404
    assert long_name not in missing.json()["error"]["message"] and "…" in missing.json()["error"]["message"]


def test_an_oversized_json_analyze_body_is_named_as_json_not_as_an_image(http):
    body = '{"url": "https://example.com/' + "a" * 17_000 + '.jpg"}'
    response = http("POST", "/computervision/imageanalysis:analyze", params={"model-name": "any-model"},
                    data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "JSON body" in message and "image is larger" not in message, message
