"""TensorFlow (SavedModel), TensorFlow Lite (float32, float16) and CoreML packages of the trained
classifier: built, unzipped and run with their own runtime in the converter environment
(.venv-convert, `make install`), fed the way Custom Vision's TensorFlow samples feed them (PIL plain
resize to the fixed input, NHWC, BGR, 0-255 float32), and compared with Loupe's own prediction.
CoreML predicts only on macOS: its package is checked structurally with coremltools. The detector's
packages (its static-shape graph) are built and run end to end by tests/exports/test_platforms.py
only: onnx2tf takes minutes on a detector, and the suite pays for it once; here, its refusals."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image
from trainer.packages import PackageError, build_package, tf_package
from trainer.packages.onnx_package import ONNX_PIXELS, package_graph, read_model_folder

from loupe import sample_data
from loupe.inference import load_predictor_from_folder
from tests.packages.conftest import sample_images
from tests.packages.consumer import unzip
from tests.packages.test_packages import FP16_TOLERANCE

SIDE = 224
METADATA_FILES = ["cvexport.manifest", "labels.txt", "metadata_properties.json"]

# Custom Vision's samples: interpreter.get_input_details()[0], set_tensor, invoke, the outputs in order
RUN_TFLITE = """
import json, sys, numpy as np
from ai_edge_litert.interpreter import Interpreter
interpreter = Interpreter(model_path=sys.argv[1])
interpreter.allocate_tensors()
(inp,) = interpreter.get_input_details()
out = interpreter.get_output_details()[0]
scores = []
for x in np.load(sys.argv[2]):
    interpreter.set_tensor(inp["index"], x[None].astype(inp["dtype"]))
    interpreter.invoke()
    scores.append(interpreter.get_tensor(out["index"])[0])
np.save(sys.argv[3], np.stack(scores))
print(json.dumps({"shape": inp["shape"].tolist(), "dtype": str(np.dtype(inp["dtype"])),
                  "signature": interpreter.get_signature_list()}))
"""
# the SavedModel sample: tf.saved_model.load(folder).signatures["serving_default"](tensor)
RUN_SAVED_MODEL = """
import json, sys, numpy as np, tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
(name, spec), = serve.structured_input_signature[1].items()
scores = [serve(tf.constant(x[None]))["model_output"].numpy()[0] for x in np.load(sys.argv[2])]
np.save(sys.argv[3], np.stack(scores))
print(json.dumps({"shape": spec.shape.as_list(), "dtype": spec.dtype.name, "input": name,
                  "outputs": sorted(serve.structured_outputs)}))
"""
INSPECT_COREML = """
import json, sys, coremltools as ct
spec = ct.models.MLModel(sys.argv[1], skip_model_load=True).get_spec()
(inp,) = spec.description.input
image = inp.type.imageType
program = str(spec.mlProgram)
print(json.dumps({"kind": spec.WhichOneof("Type"), "input": inp.name, "width": image.width,
                  "height": image.height, "color": ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(image.colorSpace),
                  "outputs": [o.name for o in spec.description.output],
                  "predicted": spec.description.predictedFeatureName,
                  "fp16": "fp16" in program, "program": program[-200000:],
                  "metadata": dict(spec.description.metadata.userDefined)}))
"""


def _in_convert_env(script: str, *args: object) -> dict:
    done = subprocess.run([str(tf_package.convert_python()), "-c", script, *map(str, args)], capture_output=True,
                          text=True, timeout=600, check=False, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _sample_inputs(images: list[Image.Image], resample: int | None) -> np.ndarray:
    """The samples' feed: PIL resize to the input size (their default filter, or Loupe's bilinear
    for identical pixels), NHWC float32, RGB -> BGR, 0-255."""
    return np.stack([np.array(im.resize((SIDE, SIDE), resample), np.float32)[:, :, (2, 1, 0)] for im in images])


@pytest.fixture(scope="module")
def classifier_inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tf-inputs")
    images = sample_images(sample_data.classification("test"))
    paths = {"sample": folder / "sample.npy", "bilinear": folder / "bilinear.npy"}
    np.save(paths["sample"], _sample_inputs(images, None))
    np.save(paths["bilinear"], _sample_inputs(images, Image.BILINEAR))
    return paths


def _check_layout(info, folder: Path, model_files: set[str], flavor: str | None, platform: str) -> dict:
    with zipfile.ZipFile(info.path) as archive:
        assert set(archive.namelist()) == model_files | set(METADATA_FILES)
    assert (folder / "labels.txt").read_text().splitlines() == info.labels == list(sample_data.CLASSIFICATION_KINDS)
    meta = json.loads((folder / "metadata_properties.json").read_text())
    assert meta["Image.BitmapPixelFormat"] == "Bgr8" and meta["Image.NominalPixelRange"] == "NominalRange_0_255"
    manifest = json.loads((folder / "cvexport.manifest").read_text())
    assert (manifest["Platform"], manifest["Flavor"], manifest["DomainType"]) == (platform, flavor, "Classification")
    assert set(manifest["ModelFiles"]) == model_files
    return manifest


class FolderCache:
    """A PackageCache in a folder (the export job's is the model's blob folder)."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir()

    def fetch(self, name: str, dest: Path) -> bool:
        if not (self.root / name).is_file():
            return False
        shutil.copyfile(self.root / name, dest)
        return True

    def keep(self, name: str, src: Path) -> None:
        shutil.copyfile(src, self.root / name)


def _tflite_of(zipped: Path) -> bytes:
    with zipfile.ZipFile(zipped) as archive:
        return archive.read("model.tflite")


def test_onnx2tf_output_is_kept_in_the_package_cache_and_reused(classifier_folder, tmp_path, caplog):
    """First in the module: its onnx2tf run is the one the module's other classifier packages reuse.
    A kept output the converter cannot use is converted afresh once and replaced; a new process (an
    export job: nothing in its memory) then builds from the kept output alone."""
    key = hashlib.sha1(package_graph(read_model_folder(classifier_folder), ONNX_PIXELS).SerializeToString()).hexdigest()
    name = f"onnx2tf-{key}.zip"
    in_process = tf_package._tf_dir(key)
    shutil.rmtree(in_process, ignore_errors=True)
    cache = FolderCache(tmp_path / "cache")
    with zipfile.ZipFile(cache.root / name, "w") as damaged:  # unpacks, but holds no TFLite to copy
        damaged.writestr("saved_model.pb", b"not a SavedModel")
    caplog.set_level(logging.INFO, logger=tf_package.__name__)
    build_package(classifier_folder, tmp_path / "first.zip", "TensorFlow", "TensorFlowLite", cache=cache)
    assert "did not convert" in caplog.text and "converting again" in caplog.text
    with zipfile.ZipFile(cache.root / name) as kept:
        assert {"saved_model.pb", "folded_float32.tflite", "folded_float16.tflite"} <= set(kept.namelist())
    assert sorted(p.name for p in cache.root.iterdir()) == [name]

    shutil.rmtree(in_process)  # as a new export job starts
    caplog.clear()
    build_package(classifier_folder, tmp_path / "second.zip", "TensorFlow", "TensorFlowLite", cache=cache)
    assert "comes from the model's package cache" in caplog.text and "again" not in caplog.text
    assert _tflite_of(tmp_path / "second.zip") == _tflite_of(tmp_path / "first.zip")


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return path


@pytest.mark.parametrize("members", [None, {"../escape/saved_model.pb": b"x", "saved_model.pb": b"x"},
                                     {"/abs/saved_model.pb": b"x"}, {"folded_float32.tflite": b"x"}],
                         ids=["not-a-zip", "parent", "absolute", "no-saved-model"])
def test_an_unusable_kept_output_is_a_miss_that_leaves_nothing(tmp_path, members):
    archive = tmp_path / "kept.zip"
    if members is None:
        archive.write_bytes(b"PK\x03\x04 truncated")
    else:
        _zip(archive, members)
    dest = tmp_path / "work" / "tf"
    assert not tf_package._unpack(archive, dest)
    assert not dest.exists() and not (tmp_path / "work" / "escape").exists() and not (tmp_path / "escape").exists()


TF_KINDS = [("TensorFlowLite", "model.tflite", RUN_TFLITE), ("TensorFlowLiteFloat16", "model.tflite", RUN_TFLITE),
            (None, "", RUN_SAVED_MODEL)]


@pytest.mark.parametrize(("flavor", "model_file", "runner"), TF_KINDS, ids=["tflite", "tflite-fp16", "saved-model"])
def test_classifier_tensorflow_package_agrees_with_loupe(classifier_folder, classifier_inputs, tmp_path, flavor,
                                                         model_file, runner):
    info = build_package(classifier_folder, tmp_path / "package.zip", "tensorflow", flavor)
    folder = unzip(info.path, tmp_path / "package")
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - set(METADATA_FILES)
    manifest = _check_layout(info, folder, files, flavor, "TensorFlow")
    if model_file:
        assert files == {model_file} and manifest["ModelFileName"] == model_file
    else:  # a SavedModel: the zip's root is the folder tf.saved_model.load opens
        assert {"saved_model.pb", "variables/variables.index"} <= files and manifest["ModelFileName"] == "saved_model.pb"
    reference = load_predictor_from_folder(classifier_folder).class_scores(
        sample_images(sample_data.classification("test"))).astype(np.float64)
    scores = {}
    for feed in ("sample", "bilinear"):
        described = _in_convert_env(runner, folder / model_file, classifier_inputs[feed], tmp_path / f"{feed}.npy")
        scores[feed] = np.load(tmp_path / f"{feed}.npy").astype(np.float64)
    assert described["shape"] == [1, SIDE, SIDE, 3] and described["dtype"] == "float32"
    agree = int((scores["sample"].argmax(1) == reference.argmax(1)).sum())
    same_top = int((scores["bilinear"].argmax(1) == reference.argmax(1)).sum())
    exact = np.abs(scores["bilinear"] - reference).max()
    print(f"\nclassifier TensorFlow/{flavor}: top tag {agree}/{len(reference)} sample resize, "
          f"{same_top}/{len(reference)} Loupe's; max |diff| sample resize "
          f"{np.abs(scores['sample'] - reference).max():.4f}, Loupe's resize {exact:.5f}")
    # as tests/packages/test_packages.py: the samples' resize may flip one near-boundary image
    assert same_top == len(reference) and agree >= len(reference) - 1
    assert exact < (FP16_TOLERANCE if flavor == "TensorFlowLiteFloat16" else 1e-4)


@pytest.mark.parametrize("flavor", [None, "coremlfloat16"])
def test_classifier_coreml_package_is_an_image_classifier(classifier_folder, tmp_path, flavor):
    info = build_package(classifier_folder, tmp_path / "package.zip", "CoreML", flavor)
    folder = unzip(info.path, tmp_path / "package")
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - set(METADATA_FILES)
    manifest = _check_layout(info, folder, files, info.flavor, "CoreML")
    assert info.flavor == (flavor and "CoreMLFloat16") and manifest["ModelFileName"] == "model.mlpackage"
    assert {"model.mlpackage/Manifest.json", "model.mlpackage/Data/com.apple.CoreML/model.mlmodel"} <= files
    spec = _in_convert_env(INSPECT_COREML, folder / "model.mlpackage")
    assert (spec["kind"], spec["input"], spec["width"], spec["height"], spec["color"]) == (
        "mlProgram", "data", SIDE, SIDE, "BGR")
    assert spec["predicted"] == "classLabel" and "classLabel" in spec["outputs"] and len(spec["outputs"]) == 2
    assert all(f'"{label}"' in spec["program"] for label in info.labels)
    assert spec["fp16"] == (flavor is not None)
    assert spec["metadata"]["Image.BitmapPixelFormat"] == "Bgr8"


def test_a_detector_without_its_weights_is_refused_with_a_reason(detector_folder, tmp_path):
    """A detector trained before detector_weights.pt existed: retrain (ONNX packages still work)."""
    folder = tmp_path / "old"
    shutil.copytree(detector_folder, folder)
    (folder / "detector_weights.pt").unlink()
    with pytest.raises(PackageError, match="train the model again"):
        build_package(folder, tmp_path / "out.zip", "TensorFlow", "TensorFlowLite")
    (folder / "detector_weights.pt").write_bytes(b"not a torch file")
    with pytest.raises(PackageError, match="static-shape graph cannot be built: detector_weights.pt cannot be used"):
        build_package(folder, tmp_path / "out.zip", "CoreML", None)
    assert not (tmp_path / "out.zip").exists()


def test_a_converter_failure_is_a_package_error_with_its_reason(tmp_path):
    # a real run of convert_tool.py on a graph no converter knows: its one-line reason, no traceback
    node = onnx.helper.make_node("NoSuchOp", ["data"], ["model_output"], domain="loupe.test")
    graph = onnx.helper.make_graph([node], "broken", [
        onnx.helper.make_tensor_value_info("data", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
        [onnx.helper.make_tensor_value_info("model_output", onnx.TensorProto.FLOAT, [1, 2])])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17),
                                                         onnx.helper.make_opsetid("loupe.test", 1)], ir_version=8)
    with pytest.raises(PackageError) as excinfo:
        tf_package.run_converter(model, ["a", "b"], "tflite")
    message = excinfo.value.message
    assert message.startswith("tflite conversion failed: ") and "NoSuchOp" in message, message
    assert "Traceback" not in message and "\n" not in message and len(message) < 600


def test_a_missing_converter_environment_is_a_package_error(classifier_folder, tmp_path, monkeypatch):
    monkeypatch.setenv(tf_package.CONVERT_PYTHON_ENV, str(tmp_path / "no-such-python"))
    with pytest.raises(PackageError, match="converter environment is missing"):
        build_package(classifier_folder, tmp_path / "out.zip", "TensorFlow", "TensorFlowLite")
