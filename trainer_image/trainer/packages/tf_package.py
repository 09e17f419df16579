"""The package's ONNX -> TensorFlow SavedModel, TensorFlow Lite (float32, float16) or CoreML, by the
converter environment (docs/exports.md#tensorflow-tensorflow-lite-and-coreml).

TensorFlow, onnx2tf and coremltools pin numpy, onnx and protobuf apart from Loupe, so they live in
their own virtual environment (``make install`` makes ``.venv-convert``; the trainer image makes
``/opt/loupe/convert-venv`` and sets LOUPE_CONVERT_PYTHON), run here as a subprocess on
``trainer_image/convert/convert_tool.py``. Its failure becomes a PackageError with its one-line
reason, which ends the export job Failed. A detector is converted from its static-shape graph
(``static_detector_source``), not from model.onnx.

onnx2tf is the slow step (45 s for a classifier, minutes for a detector), and every package of the
family starts from its output: it is kept in the model's package cache as ``onnx2tf-<SHA-1 of the
package ONNX>.zip``, so the model's next TensorFlow, TFLite or CoreML export skips it
(docs/exports.md#the-conversion-cache).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import onnx

from loupe.archives import ZipLimits, extract_zip
from loupe.artifacts import DETECTOR_WEIGHTS_FILE
from trainer.packages.manifest import PackageError
from trainer.packages.onnx_package import LoupeModel

if TYPE_CHECKING:
    from loupe.runner.export import PackageCache

log = logging.getLogger(__name__)

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

# onnx2tf's output by the SHA-1 of the package ONNX, also kept for the life of the process: a
# process building several packages of one model (tests) reads the package cache once
_TF_DIRS: dict[str, Path] = {}
_KEPT: list[tempfile.TemporaryDirectory] = []
# a kept onnx2tf output unpacks to at most 4 GiB (the sample Lite0 classifier's zips to 31 MB) in a
# few dozen files; float weights barely compress, so the datasets' bomb ratio fits it too
CACHE_ZIP_LIMITS = ZipLimits(max_entries=10_000, max_uncompressed_bytes=4 << 30, max_compression_ratio=200)


def _tf_dir(key: str) -> Path:
    if not _KEPT:
        _KEPT.append(tempfile.TemporaryDirectory(prefix="loupe-onnx2tf-"))  # removed when the process ends
    return _TF_DIRS.setdefault(key, Path(_KEPT[0].name) / key)


def _cache_name(key: str) -> str:
    return f"onnx2tf-{key}.zip"


def _unpack(archive: Path, dest: Path) -> bool:
    """The kept onnx2tf output into ``dest`` (absent before); False, leaving nothing, when the
    archive is unusable: what loupe/archives.py refuses (not a zip, a member outside the folder,
    too large unpacked, a bomb, a damaged entry) or no saved_model.pb (convert_tool.py reuses a
    folder that has one)."""
    try:
        extract_zip(archive, dest, CACHE_ZIP_LIMITS)
        if not (dest / SAVED_MODEL_MAIN).is_file():
            raise ValueError("no SavedModel")
        return True
    except (ValueError, OSError) as exc:  # UnsafeArchive is a ValueError
        log.warning("the kept onnx2tf output is unusable (%s): converting again", exc)
        shutil.rmtree(dest, ignore_errors=True)
        return False


def _pack(folder: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out.write(path, path.relative_to(folder).as_posix())


def _from_cache(key: str, tf_dir: Path, cache: PackageCache | None) -> bool:
    """onnx2tf's output for ``key`` in ``tf_dir`` from this process or the model's package cache."""
    if (tf_dir / SAVED_MODEL_MAIN).is_file():
        return True
    if cache is None:
        return False
    with tempfile.TemporaryDirectory(prefix="loupe-onnx2tf-fetch-") as tmp:
        archive = Path(tmp) / "kept.zip"
        if not cache.fetch(_cache_name(key), archive):
            return False
        hit = _unpack(archive, tf_dir)
    if hit:
        log.info("onnx2tf's output for this graph comes from the model's package cache")
    return hit


def _keep(key: str, tf_dir: Path, cache: PackageCache | None) -> None:
    if cache is None or not (tf_dir / SAVED_MODEL_MAIN).is_file():
        return
    with tempfile.TemporaryDirectory(prefix="loupe-onnx2tf-keep-") as tmp:
        archive = Path(tmp) / "kept.zip"
        _pack(tf_dir, archive)
        cache.keep(_cache_name(key), archive)


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


def run_converter(model: onnx.ModelProto, labels: list[str], target: str,
                  cache: PackageCache | None = None) -> dict[str, bytes]:
    """The files convert_tool.py writes for ``target``, by their path relative to its output folder;
    onnx2tf's output comes from and goes to ``cache`` (the model's package cache) when given."""
    python = convert_python()
    timeout = float(os.environ.get(CONVERT_TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)
    data = model.SerializeToString()
    key = hashlib.sha1(data).hexdigest()
    tf_dir = _tf_dir(key)
    reused = _from_cache(key, tf_dir, cache)
    with tempfile.TemporaryDirectory(prefix="loupe-tf-package-") as tmp:
        folder = Path(tmp)
        (folder / "package.onnx").write_bytes(data)
        (folder / "labels.json").write_text(json.dumps(labels))
        command = [str(python), str(TOOL), "--onnx", str(folder / "package.onnx"), "--target", target,
                   "--labels", str(folder / "labels.json"), "--out", str(folder / "out"), "--tf-dir", str(tf_dir)]
        # TF's and onnx2tf's chatter stays out of the job's log; TF_CPP_MIN_LOG_LEVEL quietens C++
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""}
        def convert() -> subprocess.CompletedProcess:
            return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout,
                                  check=False)

        try:
            done = convert()
            if done.returncode != 0 and reused:  # a kept output the converter cannot use: convert afresh once
                log.warning("the kept onnx2tf output did not convert (%s): converting again",
                            _reason(done.stderr, done.stdout))
                shutil.rmtree(tf_dir, ignore_errors=True)
                reused = False
                done = convert()
        except subprocess.TimeoutExpired:
            raise PackageError(f"{target} conversion did not finish within {timeout:.0f} s") from None
        if done.returncode != 0:
            raise PackageError(f"{target} conversion failed: {_reason(done.stderr, done.stdout)}")
        if not reused:
            _keep(key, tf_dir, cache)
        out = folder / "out"
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _first(files: dict[str, bytes], main: str) -> dict[str, bytes]:
    """``main`` first: the manifest's ModelFileSHA1 is of the first model file."""
    return {main: files[main], **{k: v for k, v in files.items() if k != main}}


def static_detector_source(src: LoupeModel, folder: Path) -> tuple[LoupeModel, int]:
    """The detector ``src`` with model.onnx replaced by its static-shape graph (fixed K detections,
    no data-dependent shapes: docs/exports.md), rebuilt from the weights artifact training saved
    and checked against the torch model; (that model, K). PackageError when it cannot be."""
    weights = folder / DETECTOR_WEIGHTS_FILE
    if not weights.is_file():
        raise PackageError(f"this detector was trained before TensorFlow, TensorFlow Lite and CoreML packages of "
                           f"detectors existed: it has no {DETECTOR_WEIGHTS_FILE} to rebuild a static-shape graph "
                           "from; train the model again to export it to these platforms (ONNX, OpenVino and "
                           "DockerFile packages work as it is)")
    # torch is imported here: the other packages never need it
    from trainer.detection.export import ExportMismatch
    from trainer.detection.static_export import WeightsUnusable, export_static
    from trainer.detection.static_graph import StaticGraphUnsupported

    with tempfile.TemporaryDirectory(prefix="loupe-static-detector-") as tmp:
        path = Path(tmp) / "static.onnx"
        try:
            k = export_static(weights, src.pre, path)
        except (WeightsUnusable, StaticGraphUnsupported, ExportMismatch) as exc:
            raise PackageError(f"the detector's static-shape graph cannot be built: {exc}") from None
        model = onnx.load(str(path))
    return LoupeModel(src.name, model, src.labels, src.pre), k


def fix_detections(model: onnx.ModelProto, k: int) -> None:
    """The package outputs' detection axis is K, not symbolic, in the static graph."""
    for output in model.graph.output:
        for dim in output.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_value = k


def to_tensorflow(model: onnx.ModelProto, labels: list[str], flavor: str | None,
                  cache: PackageCache | None = None) -> Converted:
    """SavedModel (flavor None, TensorFlowNormal, TensorFlowSavedModel) or model.tflite."""
    if flavor in ("TensorFlowLite", "TensorFlowLiteFloat16"):
        files = run_converter(model, labels, "tflite_fp16" if flavor == "TensorFlowLiteFloat16" else "tflite", cache)
        return Converted(files, TFLITE_FILE)
    files = run_converter(model, labels, "saved_model", cache)
    return Converted(_first(files, SAVED_MODEL_MAIN), SAVED_MODEL_MAIN)


def to_coreml(model: onnx.ModelProto, labels: list[str], flavor: str | None,
              cache: PackageCache | None = None) -> Converted:
    """model.mlpackage/... (an ML program; float16 compute for CoreMLFloat16)."""
    files = run_converter(model, labels, "coreml_fp16" if flavor == "CoreMLFloat16" else "coreml", cache)
    return Converted(files, COREML_PACKAGE)
