"""The public curl quickstart for classification (Custom Vision REST v3.3), replayed with requests:
capitalised path segments, octet-stream image bodies, the ``Training-key`` / ``Prediction-Key``
headers, then polling the iteration and classifying through the prediction route."""
from __future__ import annotations

import time
import uuid

import requests

from loupe.sample_data import classification
from tests.conftest import TEST_API_KEY

RESOURCE = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/loupe-prediction"


def test_the_curl_quickstart_runs_unchanged(api_server):
    training = f"{api_server.url}/customvision/v3.3/Training"
    keys = {"Training-key": TEST_API_KEY}
    octet = {**keys, "Content-Type": "application/octet-stream"}
    project = requests.post(f"{training}/projects", params={"name": f"quickstart-{uuid.uuid4().hex[:6]}"},
                            headers=keys, timeout=30)
    assert project.status_code == 200, project.text
    pid = project.json()["id"]

    train, test = classification("train", per_class=3), classification("test", per_class=2)
    names = {c["id"]: c["name"] for c in train.coco["categories"]}
    tags = {}
    for name in names.values():
        tag = requests.post(f"{training}/projects/{pid}/tags", params={"name": name}, headers=keys, timeout=30)
        assert tag.status_code == 200, tag.text
        tags[name] = tag.json()["id"]
    label = {a["image_id"]: names[a["category_id"]] for a in train.coco["annotations"]}
    for image in train.coco["images"]:
        upload = requests.post(f"{training}/projects/{pid}/images", params={"tagIds": tags[label[image["id"]]]},
                               headers=octet, data=train.images[image["file_name"]], timeout=60)
        assert upload.status_code == 200 and upload.json()["isBatchSuccessful"], upload.text

    iteration = requests.post(f"{training}/projects/{pid}/train", headers=keys, timeout=120).json()
    deadline = time.monotonic() + 600
    while iteration["status"] == "Training":
        assert time.monotonic() < deadline
        time.sleep(1)
        iteration = requests.get(f"{training}/projects/{pid}/iterations/{iteration['id']}", headers=keys,
                                 timeout=30).json()
    assert iteration["status"] == "Completed", iteration
    published = requests.post(f"{training}/projects/{pid}/iterations/{iteration['id']}/publish",
                              params={"publishName": "treeClassModel", "predictionId": RESOURCE}, headers=keys,
                              timeout=30)
    assert published.status_code == 200 and published.json() is True

    prediction = f"{api_server.url}/customvision/v3.1/Prediction/{pid}/classify/iterations/treeClassModel/image"
    test_names = {c["id"]: c["name"] for c in test.coco["categories"]}
    truth = {a["image_id"]: test_names[a["category_id"]] for a in test.coco["annotations"]}
    right = 0
    for image in test.coco["images"]:
        answer = requests.post(prediction, headers={"Prediction-Key": TEST_API_KEY,
                                                    "Content-Type": "application/octet-stream"},
                               data=test.images[image["file_name"]], timeout=60)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert {p["tagName"] for p in body["predictions"]} == set(tags)
        assert all(p["boundingBox"] is None for p in body["predictions"])
        right += body["predictions"][0]["tagName"] == truth[image["id"]]
    assert right >= 0.6 * len(test.coco["images"])
