"""The package's ONNX -> TensorFlow SavedModel, TensorFlow Lite (float32, float16) or CoreML, by the
converter environment (docs/exports.md#tensorflow-tensorflow-lite-and-coreml).

TensorFlow, onnx2tf and coremltools pin numpy, onnx and protobuf apart from Loupe, so they live in
their own virtual environment (``make install`` makes ``.venv-convert``; the trainer image makes
``/opt/loupe/convert-venv`` and sets LOUPE_CONVERT_PYTHON), run here as a subprocess on
``trainer_image/convert/convert_tool.py``. Its failure becomes a PackageError with its one-line
reason, which ends the export job Failed.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import onnx

from trainer.packages.manifest import PackageError

CONVERT_PYTHON_ENV = "LOUPE_CONVERT_PYTHON"
CONVERT_TIMEOUT_ENV = "LOUPE_CONVERT_TIMEOUT_SECONDS"
_TRAINER_ROOT = Path(__file__).resolve().parents[2]  # trainer_image/ here, /app in the image
TOOL = _TRAINER_ROOT / "convert" / "convert_tool.py"
LOCAL_PYTHON = _TRAINER_ROOT.parent / ".venv-convert" / "bin" / "python"
DEFAULT_TIMEOUT_S = 1200  # measured: 45 s for an EfficientNet-Lite0 classifier on 2 cores
ERROR_PREFIX = "loupe-convert-error: "  # convert_tool.py's last stderr line on a failure
SAVED_MODEL_MAIN = "saved_model.pb"
TFLITE_FILE = "model.tflite"
COREML_PACKAGE = "model.mlpackage"

# onnx2tf's output (the slow step: ~45 s) by the SHA-1 of the package ONNX, kept for the life of the
# process: the packages of one model after the first (tests, a job building several) skip it
_TF_DIRS: dict[str, Path] = {}
_KEPT: list[tempfile.TemporaryDirectory] = []


def _tf_dir(model_bytes: bytes) -> Path:
    if not _KEPT:
        _KEPT.append(tempfile.TemporaryDirectory(prefix="loupe-onnx2tf-"))  # removed when the process ends
    key = hashlib.sha1(model_bytes).hexdigest()
    return _TF_DIRS.setdefault(key, Path(_KEPT[0].name) / key)


@dataclass(frozen=True)
class Converted:
    """The package's model files (zip name -> bytes) and the name the manifest gives as the model:
    a file, or for a SavedModel and an ML package the root of the folder to open."""

    files: dict[str, bytes]
    model_file: str


def convert_python() -> Path:
    python = Path(os.environ.get(CONVERT_PYTHON_ENV) or LOCAL_PYTHON)
    if not python.is_file():
        raise PackageError(f"the TensorFlow/CoreML converter environment is missing ({python}): run `make install`, "
                           f"or set {CONVERT_PYTHON_ENV} to its Python")
    return python


def _reason(stderr: str, stdout: str) -> str:
    """convert_tool's one-line reason, or the last line the converter printed (never a traceback)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(ERROR_PREFIX):
            return line[len(ERROR_PREFIX):]
    tail = lines or [line.strip() for line in stdout.splitlines() if line.strip()] or ["no output"]
    return tail[-1][:400]


def run_converter(model: onnx.ModelProto, labels: list[str], target: str) -> dict[str, bytes]:
    """The files convert_tool.py writes for ``target``, by their path relative to its output folder."""
    python = convert_python()
    timeout = float(os.environ.get(CONVERT_TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)
    with tempfile.TemporaryDirectory(prefix="loupe-tf-package-") as tmp:
        folder = Path(tmp)
        data = model.SerializeToString()
        (folder / "package.onnx").write_bytes(data)
        (folder / "labels.json").write_text(json.dumps(labels))
        command = [str(python), str(TOOL), "--onnx", str(folder / "package.onnx"), "--target", target,
                   "--labels", str(folder / "labels.json"), "--out", str(folder / "out"),
                   "--tf-dir", str(_tf_dir(data))]
        # TF's and onnx2tf's chatter stays out of the job's log; TF_CPP_MIN_LOG_LEVEL quietens C++
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""}
        try:
            done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise PackageError(f"{target} conversion did not finish within {timeout:.0f} s") from None
        if done.returncode != 0:
            raise PackageError(f"{target} conversion failed: {_reason(done.stderr, done.stdout)}")
        out = folder / "out"
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _first(files: dict[str, bytes], main: str) -> dict[str, bytes]:
    """``main`` first: the manifest's ModelFileSHA1 is of the first model file."""
    return {main: files[main], **{k: v for k, v in files.items() if k != main}}


def _no_detectors(platform: str, detector: bool) -> None:
    if detector:  # docs/exports.md: the in-graph NMS (If, NonZero, dynamic shapes) has no static form yet
        raise PackageError(f"{platform} packages of object detectors are not built yet: the detector's "
                           "post-processing (NMS) has data-dependent shapes these targets cannot hold; "
                           "export ONNX or OpenVino instead")


def to_tensorflow(model: onnx.ModelProto, labels: list[str], flavor: str | None, detector: bool) -> Converted:
    """SavedModel (flavor None, TensorFlowNormal, TensorFlowSavedModel) or model.tflite."""
    _no_detectors("TensorFlow", detector)
    if flavor in ("TensorFlowLite", "TensorFlowLiteFloat16"):
        files = run_converter(model, labels, "tflite_fp16" if flavor == "TensorFlowLiteFloat16" else "tflite")
        return Converted(files, TFLITE_FILE)
    files = run_converter(model, labels, "saved_model")
    return Converted(_first(files, SAVED_MODEL_MAIN), SAVED_MODEL_MAIN)


def to_coreml(model: onnx.ModelProto, labels: list[str], flavor: str | None, detector: bool) -> Converted:
    """model.mlpackage/... (an ML program; float16 compute for CoreMLFloat16)."""
    _no_detectors("CoreML", detector)
    files = run_converter(model, labels, "coreml_fp16" if flavor == "CoreMLFloat16" else "coreml")
    return Converted(files, COREML_PACKAGE)
