"""Custom Vision through the unchanged SDK 3.1.1 against a private Loupe (in-memory Azurite + the
API in its own process):

- upload throughput: 64-image batches of 640x480 JPEGs with create_images_from_files, and with
  create_images_from_data (multipart) - images per second;
- prediction latency of one trained, published classifier, image by image: the Custom Vision
  prediction route (classify_image_with_no_store) beside POST /computervision/imageanalysis:analyze
  for the same model (customvision-<iteration id>), interleaved in the same run, p50 and p95 (goal:
  within 10% of each other).

    .venv/bin/python benchmarks/customvision.py [--batches 4] [--rounds 5]
"""
from __future__ import annotations

import argparse
import http.client
import io
import time
import uuid

import numpy as np
from _stack import API_VERSION, KEY, BenchStack
from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
from azure.cognitiveservices.vision.customvision.training.models import (
    ImageFileCreateBatch,
    ImageFileCreateEntry,
)
from msrest.authentication import ApiKeyCredentials
from PIL import Image

from loupe.sample_data import classification

RESOURCE = "/subscriptions/0/resourceGroups/bench/providers/Microsoft.CognitiveServices/accounts/loupe"


def photos(count: int, seed: int) -> list[bytes]:
    """Distinct 640x480 JPEGs of noise over gradients (about 100 KB each, like camera thumbnails)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        base = np.linspace(0, 255, 640, dtype=np.float32)[None, :, None].repeat(480, 0).repeat(3, 2)
        pixels = np.clip(base * rng.uniform(0.3, 1.0, 3) + rng.normal(0, 25, (480, 640, 3)), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=85)
        out.append(buffer.getvalue())
    return out


def upload_throughput(trainer: CustomVisionTrainingClient, batches: int) -> tuple[float, float, float]:
    project = trainer.create_project(f"bench-upload-{uuid.uuid4().hex[:6]}")
    tag = trainer.create_tag(project.id, "noise")
    images = photos(64 * batches * 2, seed=1)
    started = time.perf_counter()
    for b in range(batches):
        chunk = images[b * 64:(b + 1) * 64]
        batch = ImageFileCreateBatch(images=[ImageFileCreateEntry(name=f"{b}-{i}.jpg", contents=data, tag_ids=[tag.id])
                                             for i, data in enumerate(chunk)])
        assert trainer.create_images_from_files(project.id, batch).is_batch_successful
    files_rate = 64 * batches / (time.perf_counter() - started)
    started = time.perf_counter()
    for b in range(batches, 2 * batches):
        chunk = images[b * 64:(b + 1) * 64]
        # create_images_from_data sends one stream; Loupe takes one image per multipart part, so a
        # batch of data uploads is a raw multipart body built here (what REST callers send)
        assert _multipart_upload(trainer, project.id, chunk, tag.id) == 200
    data_rate = 64 * batches / (time.perf_counter() - started)
    mb = sum(len(x) for x in images) / len(images) / 1e6
    return files_rate, data_rate, mb


def _multipart_upload(trainer, project_id: str, chunk: list[bytes], tag_id: str) -> int:
    import requests

    files = [("imageData", (f"{i}.jpg", data, "application/octet-stream")) for i, data in enumerate(chunk)]
    response = requests.post(f"{trainer.config.endpoint}/customvision/v3.3/training/projects/{project_id}/images",
                             params={"tagIds": tag_id}, files=files, headers={"Training-Key": KEY}, timeout=300)
    return response.status_code


def trained_classifier(trainer: CustomVisionTrainingClient) -> tuple[str, str]:
    """(project id, iteration id) of a published classifier trained on the sample set."""
    sample = classification("train")
    project = trainer.create_project(f"bench-predict-{uuid.uuid4().hex[:6]}")
    tags = {c["name"]: trainer.create_tag(project.id, c["name"]).id for c in sample.coco["categories"]}
    names = {c["id"]: c["name"] for c in sample.coco["categories"]}
    labels = {a["image_id"]: names[a["category_id"]] for a in sample.coco["annotations"]}
    entries = [ImageFileCreateEntry(name=i["file_name"], contents=sample.images[i["file_name"]],
                                    tag_ids=[tags[labels[i["id"]]]]) for i in sample.coco["images"]]
    for start in range(0, len(entries), 64):
        trainer.create_images_from_files(project.id, ImageFileCreateBatch(images=entries[start:start + 64]))
    iteration = trainer.train_project(project.id)
    while iteration.status == "Training":
        time.sleep(1)
        iteration = trainer.get_iteration(project.id, iteration.id)
    assert iteration.status == "Completed", iteration.training_error_details
    trainer.publish_iteration(project.id, iteration.id, "bench", RESOURCE)
    return project.id, iteration.id


def latencies(port: int, project_id: str, iteration_id: str, images: list[bytes], rounds: int) -> dict[str, list]:
    """Milliseconds per request, the two routes interleaved image by image on keep-alive connections."""
    routes = {
        "customvision classify (nostore)": (
            f"/customvision/v3.1/prediction/{project_id}/classify/iterations/bench/image/nostore",
            {"Prediction-Key": KEY, "Content-Type": "application/octet-stream"}),
        "imageanalysis:analyze": (
            f"/computervision/imageanalysis:analyze?api-version={API_VERSION}&model-name=customvision-{iteration_id}",
            {"Ocp-Apim-Subscription-Key": KEY, "Content-Type": "application/octet-stream"}),
    }
    connections = {name: http.client.HTTPConnection("127.0.0.1", port, timeout=60) for name in routes}
    times: dict[str, list] = {name: [] for name in routes}
    for round_ in range(rounds + 1):
        for data in images:
            for name, (path, headers) in routes.items():
                started = time.perf_counter()
                connections[name].request("POST", path, body=data, headers=headers)
                response = connections[name].getresponse()
                body = response.read()
                assert response.status == 200, body
                if round_:  # the first round warms both routes up
                    times[name].append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=4, help="64-image batches per upload route")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the 40 test images")
    args = parser.parse_args()
    with BenchStack() as stack:
        trainer = CustomVisionTrainingClient(stack.endpoint, ApiKeyCredentials(in_headers={"Training-Key": KEY}))
        files_rate, data_rate, mb = upload_throughput(trainer, args.batches)
        project_id, iteration_id = trained_classifier(trainer)
        times = latencies(stack.port, project_id, iteration_id, list(classification("test").images.values()),
                          args.rounds)
    print(f"\nupload, {args.batches} batches of 64 JPEGs 640x480 ({mb:.2f} MB each) per route:")
    print(f"  create_images_from_files (base64 JSON): {files_rate:7.1f} images/s")
    print(f"  create_images_from_data (multipart):    {data_rate:7.1f} images/s")
    print(f"\nprediction, {len(next(iter(times.values())))} requests per route, interleaved:")
    print(f"  {'':<34}{'p50 ms':>9}{'p95 ms':>9}")
    stats = {}
    for name, values in times.items():
        stats[name] = (float(np.percentile(values, 50)), float(np.percentile(values, 95)))
        print(f"  {name:<34}{stats[name][0]:>9.2f}{stats[name][1]:>9.2f}")
    (cv50, cv95), (ia50, ia95) = stats.values()
    print(f"  Custom Vision / analyze: p50 {cv50 / ia50:.3f}, p95 {cv95 / ia95:.3f} (goal: within 0.90-1.10)")


if __name__ == "__main__":
    main()
