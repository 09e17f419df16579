"""The DockerFile package: build it for the trained classifier and (stretch) detector, unzip it, run
its app the way the container would (no Docker engine here: the app's own Python, from the
unzipped folder, on a loopback port) and compare its answers with Loupe's own prediction."""
from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import zipfile
import zlib
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import requests
from azure.ai.vision.imageanalysis import ImageAnalysisClient
from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError
from msrest.authentication import ApiKeyCredentials
from PIL import Image
from trainer.packages import PackageError, build_package

from loupe import sample_data
from loupe.inference import analyze_result, decode_for, load_predictor_from_folder
from tests.packages.consumer import unzip

ROOT = Path(__file__).resolve().parents[2]
ANALYZE = "/computervision/imageanalysis:analyze"
ALIASES = ["/image/nostore", "/p1/image", "/p1/classify/iterations/it/image",
           "/p1/classify/iterations/it/image/nostore", "/p1/detect/iterations/it/image/nostore",
           "/customvision/v3.0/Prediction/p1/classify/iterations/it/image"]


def _build(model_folder: Path, tmp_path: Path, flavor: str | None = None) -> Path:
    info = build_package(model_folder, tmp_path / f"docker-{flavor}.zip", "dockerfile", flavor)
    assert info.platform == "DockerFile" and info.path.is_file()
    return unzip(info.path, tmp_path / f"docker-{flavor}")


@contextlib.contextmanager
def serve(package: Path, tmp_path: Path, **env: str) -> Iterator[str]:
    """The package's app as a subprocess on a free loopback port; its base URL. Always killed."""
    log = (tmp_path / f"app-{len(list(tmp_path.glob('app-*.log')))}.log").open("wb")
    # -I: no PYTHONPATH, no script folder magic; the app must stand alone (no loupe, no trainer)
    process = subprocess.Popen([sys.executable, "-I", "app.py"], cwd=package / "app", stdout=subprocess.PIPE,
                               stderr=log, env={**os.environ, "PORT": "0", "HOST": "127.0.0.1", **env})
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        line = process.stdout.readline().decode() if ready else ""
        port = re.search(r":(\d+)$", line.strip())
        assert port, f"the app did not start: {line!r} {(tmp_path / log.name).read_text()[-3000:]}"
        yield f"http://127.0.0.1:{port.group(1)}"
    finally:
        process.kill()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def classifier_app(classifier_folder, tmp_path_factory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("docker-classifier")
    with serve(_build(classifier_folder, tmp), tmp) as url:
        yield url


@pytest.fixture(scope="module")
def detector_app(stretch_detector_folder, tmp_path_factory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("docker-detector")
    with serve(_build(stretch_detector_folder, tmp), tmp) as url:
        yield url


def _images(dataset: sample_data.SampleDataset) -> list[bytes]:
    return list(dataset.images.values())


def _post_three_ways(url: str, data: bytes) -> list[dict]:
    """The image as a multipart file, as a multipart form field (no filename) and as the raw body."""
    answers = [requests.post(url, files={"imageData": ("a.jpg", data, "image/jpeg")}, timeout=60),
               requests.post(url, files={"imageData": (None, data)}, timeout=60),
               requests.post(url, data=data, headers={"Content-Type": "application/octet-stream"}, timeout=60)]
    for answer in answers:
        assert answer.status_code == 200, answer.text
    return [answer.json() for answer in answers]


# --- the package


def test_the_zip_holds_a_dockerfile_and_the_app(classifier_folder, tmp_path):
    linux = _build(classifier_folder, tmp_path)
    names = sorted(str(p.relative_to(linux)) for p in linux.rglob("*") if p.is_file())
    assert names == ["Dockerfile", "README.txt", "app/app.py", "app/cvexport.manifest", "app/labels.txt",
                     "app/metadata_properties.json", "app/model.onnx", "app/requirements.txt"]
    manifest = json.loads((linux / "app" / "cvexport.manifest").read_text())
    assert manifest["Platform"] == "DockerFile" and manifest["Flavor"] is None
    assert manifest["DomainType"] == "Classification" and manifest["ModelFileName"] == "model.onnx"
    # the ONNX package's model, byte for byte
    onnx_zip = build_package(classifier_folder, tmp_path / "onnx.zip", "ONNX")
    with zipfile.ZipFile(onnx_zip.path) as archive:
        assert archive.read("model.onnx") == (linux / "app" / "model.onnx").read_bytes()
        assert archive.read("labels.txt") == (linux / "app" / "labels.txt").read_bytes()
    dockerfile = (linux / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)$", dockerfile, re.MULTILINE).group(1)
    assert base == f"python:{sys.version_info.major}.{sys.version_info.minor}-slim-bookworm"  # the tested Python
    assert "RUN pip install -r /app/requirements.txt" in dockerfile and re.search(r"^EXPOSE 80$", dockerfile, re.MULTILINE)
    assert re.search(r'^CMD \["python", "app.py"\]$', dockerfile, re.MULTILINE) and "{{" not in dockerfile

    arm = _build(classifier_folder, tmp_path, "arm")
    assert json.loads((arm / "app" / "cvexport.manifest").read_text())["Flavor"] == "ARM"
    arm_file = (arm / "Dockerfile").read_text()
    assert re.search(r"^FROM (\S+)$", arm_file, re.MULTILINE).group(1) == f"arm64v8/{base}"
    differ = [(a, b) for a, b in zip(dockerfile.splitlines(), arm_file.splitlines(), strict=True) if a != b]
    assert [a.split()[0] for a, _ in differ] == ["#", "FROM"]  # the flavor in the comment, the base image
    assert (arm / "app" / "app.py").read_bytes() == (linux / "app" / "app.py").read_bytes()


def test_the_app_pins_what_loupe_serves_with_and_imports_neither_torch_nor_loupe(classifier_folder, tmp_path):
    app = _build(classifier_folder, tmp_path) / "app"
    pins = dict(line.split("==") for line in (app / "requirements.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    core = dict(line.split("==") for line in (ROOT / "requirements-core.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert set(pins) == {"onnxruntime", "numpy", "pillow"} and all(core[name] == pins[name] for name in pins)
    tree = ast.parse((app / "app.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    third_party = imported - set(sys.stdlib_module_names) - {"__future__"}
    assert third_party == {"numpy", "onnxruntime", "PIL"}


@pytest.mark.parametrize("flavor", ["Windows", "ONNXFloat16"])
def test_other_flavors_are_refused(classifier_folder, tmp_path, flavor):
    with pytest.raises(PackageError, match="flavor"):
        build_package(classifier_folder, tmp_path / "out.zip", "DockerFile", flavor)


# --- the classifier's app


def test_classifier_answers_agree_with_loupe(classifier_folder, classifier_app):
    predictor = load_predictor_from_folder(classifier_folder)
    worst = 0.0
    for index, data in enumerate(_images(sample_data.classification("test"))):
        expected = analyze_result(predictor, data)["customModelResult"]["tagsResult"]["values"]
        if index < 5:
            answers = _post_three_ways(f"{classifier_app}/image", data)
        else:  # the raw body for the rest: the three ways were shown to agree above
            answers = [requests.post(f"{classifier_app}/image", data=data, timeout=60).json()]
        for answer in answers:
            got = answer["predictions"]
            assert got[0]["tagName"] == expected[0]["name"]
            assert sorted(p["tagName"] for p in got) == sorted(predictor.labels)
            assert [p["probability"] for p in got] == sorted((p["probability"] for p in got), reverse=True)
            assert all(p["boundingBox"] is None and p["tagId"] == "" for p in got)
            probability = {p["tagName"]: p["probability"] for p in got}
            worst = max(worst, max(abs(probability[t["name"]] - t["confidence"]) for t in expected))
        assert set(answers[0]) == {"id", "project", "iteration", "created", "predictions"}
    print(f"\nDocker app classifier: max |probability - Loupe| {worst:.6f}")
    assert worst < 1e-4


def test_classifier_aliases_nostore_and_analyze(classifier_folder, classifier_app):
    data = _images(sample_data.classification("test"))[0]
    first = requests.post(f"{classifier_app}/image", data=data, timeout=60).json()["predictions"]
    for path in ALIASES:
        answer = requests.post(classifier_app + path, data=data, headers={"Content-Type": "image/jpeg"}, timeout=60)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json()["predictions"] == first, path
    predictor = load_predictor_from_folder(classifier_folder)
    params = {"model-name": classifier_folder.name, "api-version": "2023-04-01-preview"}
    answer = requests.post(classifier_app + ANALYZE, params=params, data=data,
                           headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert answer.status_code == 200, answer.text
    got, expected = answer.json(), analyze_result(predictor, data)
    assert got["modelVersion"] == expected["modelVersion"] and got["metadata"] == expected["metadata"]
    values, reference = got["customModelResult"]["tagsResult"]["values"], expected["customModelResult"]["tagsResult"]["values"]
    assert values[0]["name"] == reference[0]["name"] and set(got["customModelResult"]) == {"tagsResult"}
    assert np.allclose([v["confidence"] for v in values], [v["confidence"] for v in reference], atol=1e-4)
    multipart = requests.post(classifier_app + ANALYZE, params=params, files={"file": ("a.jpg", data)}, timeout=60)
    assert multipart.status_code == 200 and multipart.json()["customModelResult"] == got["customModelResult"]
    banner = requests.get(classifier_app + "/", timeout=60)
    assert banner.status_code == 200 and banner.headers["Content-Type"].startswith("text/plain") and banner.text


def _declared_png(width: int, height: int) -> bytes:
    """A PNG of a few bytes whose header declares ``width`` x ``height`` pixels (a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def _declared_only(url: str, length: int) -> tuple[int, dict]:
    """A POST that declares a ``length`` body and sends none: answered without reading it."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as connection:
        connection.sendall(f"POST /image HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode())
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _variants(data: bytes) -> list[bytes]:
    """The image as a JPEG with EXIF orientation 6 (stored sideways) and as a half-transparent PNG."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated, transparent = io.BytesIO(), io.BytesIO()
    image.transpose(Image.Transpose.ROTATE_90).save(rotated, "JPEG", quality=95, exif=exif)
    rgba = image.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(image.size))
    rgba.save(transparent, "PNG")
    return [rotated.getvalue(), transparent.getvalue()]


def test_orientation_and_transparency_as_loupe(classifier_folder, classifier_app):
    predictor = load_predictor_from_folder(classifier_folder)
    params = {"model-name": classifier_folder.name}
    for data in _variants(_images(sample_data.classification("test"))[3]):
        expected = analyze_result(predictor, data)
        got = requests.post(classifier_app + ANALYZE, params=params, data=data, timeout=60).json()
        assert got["metadata"] == expected["metadata"]
        mine = {v["name"]: v["confidence"] for v in got["customModelResult"]["tagsResult"]["values"]}
        assert all(abs(mine[v["name"]] - v["confidence"]) < 1e-4
                   for v in expected["customModelResult"]["tagsResult"]["values"])
    width, height = Image.open(io.BytesIO(_images(sample_data.classification("test"))[3])).size
    assert expected["metadata"] == {"width": width, "height": height}  # the PNG: not rotated


def test_the_official_clients_read_the_app(classifier_folder, classifier_app):
    """Custom Vision's prediction SDK (endpoint = the container) and the Image Analysis SDK."""
    data = _images(sample_data.classification("test"))[2]
    predictor = load_predictor_from_folder(classifier_folder)
    top = analyze_result(predictor, data)["customModelResult"]["tagsResult"]["values"][0]["name"]
    custom_vision = CustomVisionPredictionClient(classifier_app, ApiKeyCredentials(in_headers={"Prediction-key": "-"}))
    for call in (custom_vision.classify_image, custom_vision.classify_image_with_no_store):
        result = call("00000000-0000-4000-8000-000000000000", "Iteration1", io.BytesIO(data))
        assert result.predictions[0].tag_name == top and result.created is not None
    analysis = ImageAnalysisClient(classifier_app, AzureKeyCredential("-"))
    answer = analysis.analyze(data, [], params={"model-name": classifier_folder.name})
    assert answer["customModelResult"]["tagsResult"]["values"][0]["name"] == top
    with pytest.raises(HttpResponseError) as refused:
        analysis.analyze(b"not an image", [], params={"model-name": classifier_folder.name})
    assert refused.value.status_code == 400 and refused.value.error.code == "InvalidRequest"


def test_classifier_bad_input_is_a_json_400(classifier_folder, classifier_app):
    image = "/p1/classify/iterations/it/image"
    cases = [
        (image, {"data": b""}, "BadRequestImageStream"),
        (image, {"data": b"not an image at all"}, "BadRequestImageFormat"),
        (image, {"data": b"\xff\xd8\xff\xe0" + b"\x00" * 64}, "BadRequestImageFormat"),  # a truncated JPEG
        (image, {"data": b"\x00" * (6 * 1024 * 1024 + 1)}, "BadRequestImageSizeBytes"),
        (image, {"files": {"other": ("", b"")}}, "BadRequestImageStream"),
        ("/url", {"json": {"nourl": 1}}, "BadRequestImageUrl"),
        ("/url", {"data": b"{not json"}, "BadRequestImageUrl"),
    ]
    for path, kwargs, code in cases:
        answer = requests.post(classifier_app + path, timeout=60, **kwargs)
        assert answer.status_code == 400 and answer.json()["code"] == code, (path, answer.text[:300])
    for width, height in [(20000, 100), (15000, 15000), (40000, 40000)]:  # decompression bombs
        answer = requests.post(classifier_app + "/image", data=_declared_png(width, height), timeout=60)
        assert answer.status_code == 400 and answer.json()["code"] == "BadRequestImageDimensions", answer.text
    status, body = _declared_only(classifier_app, 100_000_000)
    assert status == 400 and body["code"] == "BadRequestImageSizeBytes"
    analyze = [({}, 400), ({"model-name": "someone-else"}, 404)]
    for params, status in analyze:
        answer = requests.post(classifier_app + ANALYZE, params=params, data=b"x", timeout=60)
        assert answer.status_code == status and answer.json()["error"]["code"], answer.text
    answer = requests.post(classifier_app + ANALYZE, params={"model-name": classifier_folder.name}, data=b"garbage",
                           timeout=60)
    assert answer.status_code == 400 and answer.json()["error"]["innererror"]["code"] == "InvalidImageFormat"
    assert requests.post(classifier_app + "/nowhere", data=b"x", timeout=60).status_code == 404


def test_url_refuses_loopback_and_other_schemes_by_default(classifier_app):
    for url in ["http://127.0.0.1:9/a.jpg", "http://localhost/a.jpg", "http://[::1]/a.jpg", "http://10.1.2.3/a.jpg",
                "http://169.254.169.254/latest/meta-data", "file:///etc/passwd", "ftp://example.com/a.jpg"]:
        answer = requests.post(classifier_app + "/url", json={"url": url}, timeout=60)
        assert answer.status_code == 400 and answer.json()["code"] == "BadRequestImageUrl", (url, answer.text)


def test_url_fetches_when_private_addresses_are_allowed(classifier_folder, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    data = _images(sample_data.classification("test"))[1]
    (images / "a.jpg").write_bytes(data)
    files = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(images)))
    threading.Thread(target=files.serve_forever, daemon=True).start()
    try:
        with serve(_build(classifier_folder, tmp_path), tmp_path, ALLOW_PRIVATE_IMAGE_URLS="1") as app:
            url = f"http://127.0.0.1:{files.server_address[1]}/a.jpg"
            by_url = requests.post(f"{app}/p1/classify/iterations/it/url/nostore", json={"Url": url}, timeout=60)
            by_bytes = requests.post(f"{app}/image", data=data, timeout=60)
            assert by_url.status_code == 200, by_url.text
            assert by_url.json()["predictions"] == by_bytes.json()["predictions"]
            analyze = requests.post(app + ANALYZE, params={"model-name": classifier_folder.name}, json={"url": url},
                                    timeout=60)
            assert analyze.status_code == 200 and analyze.json()["customModelResult"]["tagsResult"]
            missing = requests.post(f"{app}/url", json={"url": url.replace("a.jpg", "b.jpg")}, timeout=60)
            assert missing.status_code == 400 and "404" in missing.json()["message"]
    finally:
        files.shutdown()
        files.server_close()


# --- the detector's app


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inter = np.prod(np.clip(np.minimum(a[2:], b[:, 2:]) - np.maximum(a[:2], b[:, :2]), 0, None), 1)
    return inter / (np.prod(a[2:] - a[:2]) + np.prod(b[:, 2:] - b[:, :2], 1) - inter)


def test_detector_answers_agree_with_loupe(stretch_detector_folder, detector_app):
    """Every Loupe box above 0.5 matched by an app box of its tag with IoU >= 0.9 (the stretch
    detector: the package takes a plain resize, docs/exports.md#letterbox-trained-detectors)."""
    predictor = load_predictor_from_folder(stretch_detector_folder)
    matched = total = 0
    for index, data in enumerate(_images(sample_data.detection("test"))):
        image, info = decode_for(predictor, data)
        found = predictor.detections(image, original_size=(info.width, info.height))
        size = np.array([info.width, info.height] * 2, np.float64)
        answers = _post_three_ways(f"{detector_app}/image", data) if index < 3 else \
            [requests.post(f"{detector_app}/image", data=data, timeout=60).json()]
        assert all(a["predictions"] == answers[0]["predictions"] for a in answers)
        got = answers[0]["predictions"]
        assert [p["probability"] for p in got] == sorted((p["probability"] for p in got), reverse=True)
        for box, score, label in zip(found.boxes, found.scores, found.labels, strict=True):
            if score <= 0.5:
                continue
            same = [p["boundingBox"] for p in got if p["tagName"] == predictor.labels[int(label)]]
            mine = np.array([[b["left"], b["top"], b["left"] + b["width"], b["top"] + b["height"]] for b in same])
            best = float(_iou(np.clip(box, 0, size), mine * size).max()) if same else 0.0
            total, matched = total + 1, matched + (best >= 0.9)
    print(f"\nDocker app detector: Loupe boxes > 0.5 matched (IoU >= 0.9, same tag): {matched}/{total}")
    assert total > 0 and matched == total


def test_detector_analyze_and_aliases(stretch_detector_folder, detector_app):
    data = _images(sample_data.detection("test"))[0]
    predictor = load_predictor_from_folder(stretch_detector_folder)
    expected = analyze_result(predictor, data)
    answer = requests.post(detector_app + ANALYZE, data=data, timeout=60,
                           params={"model-name": stretch_detector_folder.name, "api-version": "2024-02-01"})
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got["modelVersion"] == expected["modelVersion"] and got["metadata"] == expected["metadata"]
    objects = got["customModelResult"]["objectsResult"]["values"]
    reference = expected["customModelResult"]["objectsResult"]["values"]
    assert reference and len(objects) == len(reference)
    for mine, theirs in zip(objects, reference, strict=True):
        assert set(mine["boundingBox"]) == {"x", "y", "w", "h"} and mine["tags"][0]["name"] == theirs["tags"][0]["name"]
        assert all(abs(mine["boundingBox"][k] - theirs["boundingBox"][k]) <= 2 for k in "xywh")
        assert abs(mine["tags"][0]["confidence"] - theirs["tags"][0]["confidence"]) < 1e-3
    first = requests.post(f"{detector_app}/image", data=data, timeout=60).json()["predictions"]
    assert first and all(set(p["boundingBox"]) == {"left", "top", "width", "height"} for p in first)
    for path in ["/p1/detect/iterations/it/image", "/p1/detect/iterations/it/image/nostore"]:
        assert requests.post(detector_app + path, data=data, timeout=60).json()["predictions"] == first
