"""Predictions over HTTP (issue #5): the samples PredictionClient and azure-ai-vision-imageanalysis
against trained models, the URL form, input safety, and concurrency."""
from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from azure.ai.vision.imageanalysis import ImageAnalysisClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from PIL import Image

from loupe.artifacts import LABELS_FILE, MODEL_FILE, PREPROCESSING_FILE
from loupe.inference import load_predictor_from_folder
from loupe.runner.examples import Example
from loupe.runner.scoring import classify
from tests.conftest import TEST_API_KEY
from tests.inference.images import encode, noise_image, png_header_only
from tests.support.image_server import ImageServer

ANALYZE = "/computervision/imageanalysis:analyze"


def _post(server, params: dict, data=None, content_type="image/jpeg", **kwargs):
    headers = {"Ocp-Apim-Subscription-Key": TEST_API_KEY}
    if content_type:
        headers["Content-Type"] = content_type
    return requests.post(f"{server.url}{ANALYZE}", params={"api-version": "2023-04-01-preview", **params},
                         data=data, headers=headers, timeout=60, **kwargs)


def _truth(sample) -> dict[str, str]:
    names = {c["id"]: c["name"] for c in sample.coco["categories"]}
    by_id = {a["image_id"]: names[a["category_id"]] for a in sample.coco["annotations"]}
    return {image["file_name"]: by_id[image["id"]] for image in sample.coco["images"]}


def test_prediction_client_classifies_the_test_images(clients, trained_classifier):
    model, sample = trained_classifier
    truth = _truth(sample)
    correct = 0
    for file_name, data in sample.images.items():
        result = clients["prediction"].predict(model, data)
        assert set(result) == {"modelVersion", "metadata", "customModelResult"}
        width, height = Image.open(io.BytesIO(data)).size
        assert result["metadata"] == {"width": width, "height": height}
        values = result["customModelResult"]["tagsResult"]["values"]
        assert "objectsResult" not in result["customModelResult"]
        assert {v["name"] for v in values} == {"star", "heart", "ring", "arrow"}  # every class
        confidences = [v["confidence"] for v in values]
        assert confidences == sorted(confidences, reverse=True)
        assert sum(confidences) == pytest.approx(1.0, abs=1e-3)
        correct += values[0]["name"] == truth[file_name]
    assert correct / len(sample.images) > 0.5


def test_prediction_matches_the_exported_model_on_the_same_images(clients, services, trained_classifier, tmp_path):
    """Serving preprocessing == training/evaluation preprocessing: the same file gives the same scores."""
    model, sample = trained_classifier
    container = services.storage.container(services.settings.models_container)
    for artifact in (MODEL_FILE, LABELS_FILE, PREPROCESSING_FILE):
        (tmp_path / artifact).write_bytes(container.download_blob(f"{model}/{artifact}").readall())
    exported = load_predictor_from_folder(tmp_path)
    for index, (file_name, data) in enumerate(list(sample.images.items())[:4]):
        path = tmp_path / f"{index}.jpg"
        path.write_bytes(data)
        offline = classify(exported, [Example(path, file_name, 0, 0)])[0]
        served = {v["name"]: v["confidence"] for v in
                  clients["prediction"].predict(model, data)["customModelResult"]["tagsResult"]["values"]}
        assert np.allclose([served[label] for label in exported.labels], offline, atol=1e-6)


def test_the_image_analysis_sdk_reaches_the_custom_model(api_server, trained_classifier):
    model, sample = trained_classifier
    client = ImageAnalysisClient(api_server.url, AzureKeyCredential(TEST_API_KEY))
    data = next(iter(sample.images.values()))
    result = client.analyze(data, [], params={"model-name": model})  # sends features= (empty)
    assert result["customModelResult"]["tagsResult"]["values"][0]["name"] in {"star", "heart", "ring", "arrow"}
    assert result["metadata"]["width"] > 0
    with pytest.raises(ResourceNotFoundError):
        client.analyze(data, [], params={"model-name": "no-such-model"})
    with pytest.raises(HttpResponseError) as refused:
        client.analyze(b"not an image", [], params={"model-name": model})
    assert refused.value.status_code == 400
    assert refused.value.error.code == "InvalidRequest"


def test_the_url_form_fetches_from_an_http_server_when_allowed(url_api_server, api_server, trained_classifier):
    model, sample = trained_classifier
    file_name, data = next(iter(sample.images.items()))
    with ImageServer({"/picture.jpg": data}) as images:
        body = json.dumps({"url": images.url("/picture.jpg")})
        allowed = _post(url_api_server, {"model-name": model}, body, "application/json")
        assert allowed.status_code == 200, allowed.text
        direct = _post(url_api_server, {"model-name": model}, data)
        assert allowed.json() == direct.json()
        # the default settings refuse plain http and loopback addresses
        refused = _post(api_server, {"model-name": model}, body, "application/json")
        assert refused.status_code == 400
        assert refused.json()["error"]["innererror"]["code"] in ("InvalidImageUrl", "ImageUrlNotAllowed")
        missing = _post(url_api_server, {"model-name": model}, json.dumps({"url": images.url("/nothing.jpg")}),
                        "application/json")
        assert missing.status_code == 400
        assert missing.json()["error"]["innererror"]["code"] == "ImageDownloadFailed"


def _bomb_jpeg() -> bytes:
    return png_header_only(30000, 30000)


UNSAFE = [
    ("empty body", {}, b"", "image/jpeg", "InvalidImageSize"),
    ("over 6 MB", {}, b"\xff\xd8" + b"\0" * (6 * 1024 * 1024 + 10), "image/jpeg", "InvalidImageSize"),
    ("not an image", {}, b"hello world", "image/jpeg", "InvalidImageFormat"),
    ("unsupported format", {}, encode(noise_image(100, 100, 1), "TGA"), "image/x-tga", "InvalidImageFormat"),
    ("too small", {}, encode(noise_image(20, 20, 2), "PNG"), "image/png", "InvalidImageDimension"),
    ("decompression bomb", {}, _bomb_jpeg(), "image/png", "InvalidImageDimension"),
    ("truncated", {}, encode(noise_image(200, 200, 3), "JPEG")[:600], "image/jpeg", "InvalidImageFormat"),
    ("bad content type", {}, b"{}", "text/plain", "InvalidImageFormat"),
    ("json without url", {}, b'{"uri": "x"}', "application/json", "BadArgument"),
    ("json url to metadata", {}, b'{"url": "http://169.254.169.254/latest"}', "application/json", None),
    ("json url https private", {}, b'{"url": "https://10.0.0.1/a.jpg"}', "application/json", "ImageUrlNotAllowed"),
    ("multipart without parts", {}, b"--b--\r\n", "multipart/form-data; boundary=b", "BadArgument"),
]


@pytest.mark.parametrize("case", UNSAFE, ids=[c[0] for c in UNSAFE])
def test_unsafe_inputs_are_refused_and_the_server_keeps_serving(api_server, trained_classifier, case):
    model, sample = trained_classifier
    _, params, data, content_type, inner = case
    response = _post(api_server, {"model-name": model, **params}, data, content_type)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "InvalidRequest"
    if inner:
        assert error["innererror"]["code"] == inner, error
    ok = _post(api_server, {"model-name": model}, next(iter(sample.images.values())))
    assert ok.status_code == 200


def test_multipart_uploads_without_a_filename_work(api_server, trained_classifier):
    model, sample = trained_classifier
    data = next(iter(sample.images.values()))
    boundary = "loupeboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"imageData\"\r\n\r\n").encode() + data + \
        f"\r\n--{boundary}--\r\n".encode()
    response = _post(api_server, {"model-name": model}, body, f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 200, response.text
    assert response.json() == _post(api_server, {"model-name": model}, data).json()


def test_query_rules(api_server, trained_classifier):
    model, sample = trained_classifier
    data = next(iter(sample.images.values()))
    neither = _post(api_server, {}, data)
    assert neither.status_code == 400
    assert "Either 'features' or 'model-name'" in neither.json()["error"]["message"]
    empty_features = _post(api_server, {"features": "", "model-name": model}, data)
    assert empty_features.status_code == 200
    with_features = _post(api_server, {"features": "tags", "model-name": model}, data)
    assert with_features.status_code == 200
    standard_only = _post(api_server, {"features": "tags"}, data)
    assert standard_only.status_code == 400
    for version in ("2023-02-01-preview", "2023-10-01"):
        response = requests.post(f"{api_server.url}{ANALYZE}", params={"api-version": version, "model-name": model},
                                 data=data, headers={"Ocp-Apim-Subscription-Key": TEST_API_KEY,
                                                     "Content-Type": "application/octet-stream"}, timeout=60)
        assert response.status_code == 200
    unknown = _post(api_server, {"model-name": "no-such-model"}, data)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NotFound"


def test_eight_parallel_clients_get_the_sequential_results(api_server, trained_classifier):
    model, sample = trained_classifier
    images = list(sample.images.values())
    sequential = [_post(api_server, {"model-name": model}, data).json() for data in images]

    def client(worker: int) -> list[tuple[int, dict]]:
        session = requests.Session()
        out = []
        for n in range(50):
            index = (worker + n) % len(images)
            response = session.post(f"{api_server.url}{ANALYZE}",
                                    params={"api-version": "2023-04-01-preview", "model-name": model},
                                    data=images[index], timeout=60,
                                    headers={"Ocp-Apim-Subscription-Key": TEST_API_KEY, "Content-Type": "image/jpeg"})
            assert response.status_code == 200, response.text
            out.append((index, response.json()))
        return out

    with ThreadPoolExecutor(8) as pool:
        results = [item for batch in pool.map(client, range(8)) for item in batch]
    assert len(results) == 400
    for index, body in results:
        assert body == sequential[index]
