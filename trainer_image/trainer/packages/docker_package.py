"""The DockerFile package: a Dockerfile and a stand-alone prediction app (docs/exports.md#docker-app).

Custom Vision's Docker export (``<iteration>.DockerFile.Linux``) is a zip with a ``Dockerfile`` and
an ``app/`` folder holding the model, its labels and the serving code. Loupe's holds, under
``app/``, the ONNX package's model (the same graph, BGR 0-255) with ``labels.txt``,
``metadata_properties.json`` and ``cvexport.manifest`` as every package, plus the template files of
``docker_app/`` (``app.py``, ``requirements.txt``): onnxruntime, numpy and Pillow, no torch, no
Loupe. The flavors differ only in the Dockerfile's base image.
"""
from __future__ import annotations

import re
from pathlib import Path

from loupe.artifacts import LABELS_FILE, MODEL_FILE, PREPROCESSING_FILE, model_version_of
from trainer.packages import manifest as layout
from trainer.packages.onnx_package import ONNX_PIXELS, LoupeModel, metadata_of, package_graph

PLATFORM = "DockerFile"
LINUX, ARM = "Linux", "ARM"
FLAVORS: tuple[str | None, ...] = (None, LINUX, ARM)
# the Python of development and of the trainer image (the pins of app/requirements.txt are tested
# on it); ARM: the 64-bit image, the one onnxruntime publishes wheels for (no 32-bit ARM wheels)
BASE_IMAGES = {LINUX: "python:3.11-slim-bookworm", ARM: "arm64v8/python:3.11-slim-bookworm"}
TEMPLATES = Path(__file__).with_name("docker_app")
APP_FILES = ("app.py", "requirements.txt")  # copied as they are into app/
APP = "app/"
MODEL_FILE_NAME = "model.onnx"


def model_version(folder: Path) -> str:
    """Loupe's ``modelVersion`` of the model folder, so the app's analyze answer carries the one
    Loupe's API gives for the same model."""
    return model_version_of(*((folder / name).read_bytes() for name in (MODEL_FILE, LABELS_FILE, PREPROCESSING_FILE)))


def _filled(template: str, values: dict[str, str]) -> bytes:
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], template).encode("utf-8")


def docker_files(src: LoupeModel, folder: Path, flavor: str | None) -> tuple[dict[str, bytes], str]:
    """Every entry of the package zip (name -> bytes) and the domain."""
    model = package_graph(src, ONNX_PIXELS)  # the ONNX package's graph, so both serve one model
    model_bytes = model.SerializeToString()
    domain = "ObjectDetection" if src.is_detector else "Classification"
    data = layout.manifest(name=src.name, domain=domain, platform=PLATFORM, flavor=flavor,
                           model_files=[MODEL_FILE_NAME], model_bytes=model_bytes)
    data["LoupeModelVersion"] = model_version(folder)  # the app's analyze modelVersion
    values = {"MODEL_NAME": src.name, "DOMAIN": domain, "FLAVOR": flavor or LINUX,
              "BASE_IMAGE": BASE_IMAGES[flavor or LINUX],
              "IMAGE_NAME": re.sub(r"[^a-z0-9._-]+", "-", src.name.lower()).strip("-._") or "loupe-model"}
    entries = {
        "Dockerfile": _filled((TEMPLATES / "Dockerfile").read_text(encoding="utf-8"), values),
        "README.txt": _filled((TEMPLATES / "README.txt").read_text(encoding="utf-8"), values),
        **{APP + name: (TEMPLATES / name).read_bytes() for name in APP_FILES},
        # paths in the manifest are relative to app/, where it lies beside them
        **layout.package_entries({MODEL_FILE_NAME: model_bytes}, src.labels, metadata_of(model), data, prefix=APP),
    }
    return entries, domain
