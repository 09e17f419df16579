"""Object detection end to end over HTTP (issues #4 and #5): a detector trained with the samples
TrainingClient, evaluated with both evaluation clients, and serving pixel boxes to the samples
PredictionClient and azure-ai-vision-imageanalysis."""
from __future__ import annotations

import pytest
import requests
from azure.ai.vision.imageanalysis import ImageAnalysisClient
from azure.core.credentials import AzureKeyCredential
from cognitive_service_vision_model_customization_python_samples import Evaluation, EvaluationStatus

from tests.conftest import TEST_API_KEY

CLASSES = {"star", "heart", "ring"}


def _iou(a, b) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    inter = max(0.0, min(ax2, bx2) - max(a[0], b[0])) * max(0.0, min(ay2, by2) - max(a[1], b[1]))
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_the_trained_detector_reports_map(trained_detector):
    _, _, _, model = trained_detector
    performance = model.model_performance
    for key in ("meanAveragePrecision30", "meanAveragePrecision50", "meanAveragePrecision75"):
        assert 0.0 <= performance[key] <= 1.0
    assert performance["meanAveragePrecision50"] > 0.5
    assert performance["meanAveragePrecision30"] >= performance["meanAveragePrecision50"] >= \
        performance["meanAveragePrecision75"]
    assert set(performance["tagPerformance"]) == CLASSES
    assert all("averagePrecision50" in v for v in performance["tagPerformance"].values())
    assert model.training_params.model_kind.value == "Generic-Detector"


def test_both_evaluation_clients_evaluate_the_detector(clients, trained_detector):
    name, _, test_set, model = trained_detector
    clients["training"].evaluate_model(Evaluation("det-eval-1", name, test_set))
    first = clients["training"].wait_for_evaluation_completion(name, "det-eval-1", check_wait_in_secs=1)
    assert first.status is EvaluationStatus.SUCCEEDED
    # the EvaluationClient goes through //models/... (docs/wire-contract.md#double-slashes)
    clients["evaluation"].evaluate(Evaluation("det-eval-2", name, test_set))
    second = clients["evaluation"].wait_for_completion("det-eval-2", name, check_wait_in_secs=1)
    assert second.status is EvaluationStatus.SUCCEEDED
    for evaluation in (first, second):
        assert evaluation.model_performance["meanAveragePrecision50"] == pytest.approx(
            model.model_performance["meanAveragePrecision50"])


def test_evaluation_refusals(api_server, trained_detector, small_classification):
    name, _, _, _ = trained_detector
    headers = {"Ocp-Apim-Subscription-Key": TEST_API_KEY}

    def put(model, evaluation, dataset):
        return requests.put(f"{api_server.url}/computervision/models/{model}/evaluations/{evaluation}",
                            params={"api-version": "2023-04-01-preview"}, headers=headers, timeout=30,
                            json={"evaluationParameters": {"testDatasetName": dataset}})

    classification_set, _ = small_classification
    wrong_kind = put(name, "wrong-kind", classification_set)
    assert wrong_kind.status_code == 400 and wrong_kind.json()["error"]["code"] == "incorrectModelKind"
    unknown = put(name, "unknown", "no-such-dataset")
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "datasetNotFound"
    no_model = put("no-such-model", "e", classification_set)
    assert no_model.status_code == 404
    listed = requests.get(f"{api_server.url}/computervision/models/{name}/evaluations",
                          params={"api-version": "2023-04-01-preview"}, headers=headers, timeout=30)
    assert listed.status_code == 200
    assert {"det-eval-1", "det-eval-2"} <= {e["name"] for e in listed.json()["value"]}


def test_predictions_carry_pixel_boxes_on_the_objects(clients, trained_detector):
    name, test, _, _ = trained_detector
    names = {c["id"]: c["name"] for c in test.coco["categories"]}
    truth: dict[int, list] = {}
    for annotation in test.coco["annotations"]:
        truth.setdefault(annotation["image_id"], []).append((names[annotation["category_id"]], annotation["bbox"]))
    found = total = 0
    for image in test.coco["images"]:
        result = clients["prediction"].predict(name, test.images[image["file_name"]])
        width, height = result["metadata"]["width"], result["metadata"]["height"]
        assert (width, height) == (image["width"], image["height"])
        assert "tagsResult" not in result["customModelResult"]
        objects = result["customModelResult"]["objectsResult"]["values"]
        confidences = [o["tags"][0]["confidence"] for o in objects]
        assert confidences == sorted(confidences, reverse=True)
        for obj in objects:
            box = obj["boundingBox"]
            assert all(isinstance(box[k], int) for k in "xywh")
            assert box["x"] >= 0 and box["y"] >= 0 and box["w"] >= 1 and box["h"] >= 1
            assert box["x"] + box["w"] <= width and box["y"] + box["h"] <= height
            assert obj["tags"][0]["name"] in CLASSES
        confident = [o for o in objects if o["tags"][0]["confidence"] >= 0.5]
        for label, (left, top, w, h) in truth[image["id"]]:
            total += 1
            pixels = (left * width, top * height, w * width, h * height)
            found += any(o["tags"][0]["name"] == label and _iou(
                (o["boundingBox"]["x"], o["boundingBox"]["y"], o["boundingBox"]["w"], o["boundingBox"]["h"]),
                pixels) >= 0.5 for o in confident)
    assert found / total > 0.5, f"{found} of {total} objects found"


def test_the_image_analysis_sdk_gets_the_detector_objects(api_server, trained_detector):
    name, test, _, _ = trained_detector
    client = ImageAnalysisClient(api_server.url, AzureKeyCredential(TEST_API_KEY))
    result = client.analyze(next(iter(test.images.values())), [], params={"model-name": name})
    objects = result["customModelResult"]["objectsResult"]["values"]
    assert objects and objects[0]["tags"][0]["name"] in CLASSES
