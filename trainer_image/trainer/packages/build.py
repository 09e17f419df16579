"""build_package: a Loupe model folder -> a Custom Vision export package zip (docs/exports.md)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from trainer.packages import manifest as layout
from trainer.packages.docker_package import docker_files
from trainer.packages.manifest import PackageError, PackageInfo
from trainer.packages.onnx_package import (
    ONNX_PIXELS,
    OPENVINO_PIXELS,
    metadata_of,
    package_graph,
    read_model_folder,
    to_float16,
    to_opset,
)
from trainer.packages.openvino_package import to_openvino
from trainer.packages.tf_package import fix_detections, static_detector_source, to_coreml, to_tensorflow

if TYPE_CHECKING:
    from loupe.runner.export import PackageCache

ONNX_MODEL_FILE = "model.onnx"
FLOAT16 = "ONNXFloat16"
# Custom Vision's ONNX flavors for older runtimes: the package graph converted to that opset
OPSET_FLAVORS = {"ONNX10": 10, "ONNX12": 12}
# platform -> the flavors it has (None: the plain one), in Custom Vision's spelling
PLATFORMS: dict[str, tuple[str | None, ...]] = {"ONNX": (None, FLOAT16, *OPSET_FLAVORS), "OpenVino": (None,),
                                                "DockerFile": (None, "Linux", "ARM"),
                                                # None = TensorFlowNormal = TensorFlowSavedModel: a SavedModel
                                                "TensorFlow": (None, "TensorFlowNormal", "TensorFlowSavedModel",
                                                               "TensorFlowLite", "TensorFlowLiteFloat16"),
                                                "CoreML": (None, "CoreMLFloat16")}


def _canonical(platform: str, flavor: str | None) -> tuple[str, str | None]:
    """Custom Vision's names, matched without regard to case; PackageError for anything else."""
    by_lower = {name.lower(): name for name in PLATFORMS}
    name = by_lower.get((platform or "").lower())
    if name is None:
        raise PackageError(f"unknown export platform {platform!r}; supported: {sorted(PLATFORMS)}")
    flavors = {f.lower(): f for f in PLATFORMS[name] if f}
    if flavor is None or flavor == "":
        return name, None
    if flavor.lower() not in flavors:
        raise PackageError(f"unknown flavor {flavor!r} for platform {name}; supported: "
                           f"{[f or 'null' for f in PLATFORMS[name]]}")
    return name, flavors[flavor.lower()]


def build_package(model_folder: Path, out_zip: Path, platform: str, flavor: str | None = None,
                  cache: PackageCache | None = None) -> PackageInfo:
    """Write the ``platform``/``flavor`` package of the Loupe model in ``model_folder`` to ``out_zip``;
    ``cache`` is the model's package cache (an export job's: the TensorFlow-family conversions keep
    onnx2tf's output there).

    Raises PackageError for an unknown platform or flavor, an unusable model folder, or a
    converter failure.
    """
    platform, flavor = _canonical(platform, flavor)
    src = read_model_folder(Path(model_folder))
    if platform == "DockerFile":  # a Dockerfile and an app around the ONNX package's model
        entries, domain = docker_files(src, Path(model_folder), flavor)
        written = layout.write_entries(Path(out_zip), entries)
        return PackageInfo(Path(out_zip), platform, flavor, domain, src.labels, (src.side, src.side), written)
    if platform == "ONNX":
        model = package_graph(src, ONNX_PIXELS)
        if flavor == FLOAT16:
            model = to_float16(model, src.is_detector)
        elif flavor in OPSET_FLAVORS:
            model = to_opset(model, OPSET_FLAVORS[flavor])
        files = {ONNX_MODEL_FILE: model.SerializeToString()}
    elif platform == "OpenVino":
        model = package_graph(src, OPENVINO_PIXELS)
        files = to_openvino(model)
    else:  # TensorFlow, CoreML: converted from the ONNX package graph (NHWC, BGR, 0-255 once converted)
        if src.is_detector:  # model.onnx's NMS has data-dependent shapes: a static graph from the weights
            static, k = static_detector_source(src, Path(model_folder))
            model = package_graph(static, ONNX_PIXELS)
            fix_detections(model, k)
        else:
            model = package_graph(src, ONNX_PIXELS)
        converted = (to_tensorflow if platform == "TensorFlow" else to_coreml)(model, src.labels, flavor, cache)
        files = converted.files
    domain = "ObjectDetection" if src.is_detector else "Classification"
    data = layout.manifest(name=src.name, domain=domain, platform=platform, flavor=flavor,
                           model_files=list(files), model_bytes=next(iter(files.values())))
    if platform in ("TensorFlow", "CoreML"):
        data["ModelFileName"] = converted.model_file  # an ML package is a folder: the name to open
    written = layout.write_zip(Path(out_zip), files, src.labels, metadata_of(model), data)
    return PackageInfo(Path(out_zip), platform, flavor, domain, src.labels, (src.side, src.side), written)
