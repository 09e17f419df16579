"""Run an unzipped package the way Azure-Samples/customvision-export-samples does: PIL plain
resize to the fixed input, NCHW, BGR and 0-255 as the metadata says, onnxruntime or OpenVINO."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from PIL import Image


def unzip(package: Path, folder: Path) -> Path:
    with zipfile.ZipFile(package) as archive:
        archive.extractall(folder)
    return folder


class OnnxConsumer:
    def __init__(self, folder: Path) -> None:
        manifest = json.loads((folder / "cvexport.manifest").read_text())
        path = folder / manifest["ModelFileName"]
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (inp,) = self.session.get_inputs()
        self.input_shape = inp.shape[2:]
        self.input_name = inp.name
        self.input_type = {"tensor(float)": np.float32, "tensor(float16)": np.float16}[inp.type]
        self.output_names = [o.name for o in self.session.get_outputs()]
        meta = {m.key: m.value for m in onnx.load(str(path)).metadata_props}
        self.is_bgr = meta.get("Image.BitmapPixelFormat") == "Bgr8"
        self.is_range255 = meta.get("Image.NominalPixelRange") == "NominalRange_0_255"

    def predict(self, image: Image.Image, resample: int | None = None) -> dict[str, np.ndarray]:
        """``resample`` None: PIL's default filter, as the samples; BILINEAR: Loupe's."""
        array = np.array(image.resize(self.input_shape, resample), dtype=np.float32)[np.newaxis].transpose((0, 3, 1, 2))
        if self.is_bgr:
            array = array[:, (2, 1, 0), :, :]
        if not self.is_range255:
            array = array / 255
        outputs = self.session.run(self.output_names, {self.input_name: array.astype(self.input_type)})
        return dict(zip(self.output_names, outputs, strict=True))


class OpenVinoConsumer:
    """The OpenVINO sample (RGB, 0-1), on today's openvino API, with the f32 precision hint."""

    def __init__(self, folder: Path) -> None:
        import openvino as ov

        model = ov.Core().read_model(str(folder / "model.xml"), str(folder / "model.bin"))
        self.compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        self.input_shape = list(self.compiled.inputs[0].shape)[2:]

    def predict(self, image: Image.Image, resample: int | None = None) -> dict[str, np.ndarray]:
        array = np.array(image.resize(self.input_shape, resample))[np.newaxis].transpose((0, 3, 1, 2)) / 255
        result = self.compiled(array.astype(np.float32))
        return {output.any_name: np.asarray(result[output]) for output in self.compiled.outputs}


# Custom Vision's TensorFlow samples, run in the converter environment (TensorFlow and LiteRT are
# not in Loupe's): argv = model path, inputs .npy (N NHWC images), outputs .npz. TFLite through
# its serving signature when it has one (outputs by name), else the output details' names.
_RUN_TF = """
import json, sys, numpy as np
path, inputs, out = sys.argv[1:4]
batch, results = np.load(inputs), {}
if path.endswith(".tflite"):
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    shape, dtype = inp["shape"].tolist(), np.dtype(inp["dtype"])
    signatures = interpreter.get_signature_list()
    for x in batch:
        if signatures:
            runner = interpreter.get_signature_runner()
            (name,) = runner.get_input_details()
            answer = runner(**{name: x[None].astype(dtype)})
        else:
            interpreter.set_tensor(inp["index"], x[None].astype(dtype))
            interpreter.invoke()
            answer = {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
        for key, value in answer.items():
            results.setdefault(key, []).append(np.asarray(value))
else:
    import tensorflow as tf
    serve = tf.saved_model.load(path).signatures["serving_default"]
    (name, spec), = serve.structured_input_signature[1].items()
    shape, dtype = spec.shape.as_list(), np.dtype(spec.dtype.as_numpy_dtype)
    for x in batch:
        for key, value in serve(tf.constant(x[None].astype(dtype))).items():
            results.setdefault(key, []).append(value.numpy())
np.savez(out, **{k: np.stack(v) for k, v in results.items()})
print(json.dumps({"shape": shape, "dtype": dtype.name}))
"""


class TensorFlowConsumer:
    """A TensorFlow SavedModel or TFLite package, fed like Custom Vision's TensorFlow samples: PIL
    plain resize to the fixed input, NHWC float32, BGR and 0-255 as the metadata says. Runs a whole
    batch of images in one converter-environment process (TensorFlow takes seconds to import)."""

    def __init__(self, folder: Path, side: int) -> None:
        manifest = json.loads((folder / "cvexport.manifest").read_text())
        main = folder / manifest["ModelFileName"]
        self.path = main if main.suffix == ".tflite" else main.parent
        self.side = side
        meta = json.loads((folder / "metadata_properties.json").read_text())
        self.is_bgr = meta.get("Image.BitmapPixelFormat") == "Bgr8"
        self.is_range255 = meta.get("Image.NominalPixelRange") == "NominalRange_0_255"
        self.input_info: dict = {}

    def predict_many(self, images: list[Image.Image], resample: int | None = None) -> list[dict[str, np.ndarray]]:
        import os
        import subprocess
        import tempfile

        from trainer.packages.tf_package import convert_python

        batch = np.stack([np.array(im.resize((self.side, self.side), resample), np.float32) for im in images])
        if self.is_bgr:
            batch = batch[..., ::-1]
        if not self.is_range255:
            batch = batch / 255
        with tempfile.TemporaryDirectory() as tmp:
            np.save(f"{tmp}/in.npy", np.ascontiguousarray(batch))
            done = subprocess.run([str(convert_python()), "-c", _RUN_TF, str(self.path), f"{tmp}/in.npy",
                                   f"{tmp}/out.npz"], capture_output=True, text=True, timeout=600, check=False,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""})
            assert done.returncode == 0, done.stderr[-3000:]
            self.input_info = json.loads(done.stdout.strip().splitlines()[-1])
            with np.load(f"{tmp}/out.npz") as outputs:
                stacked = {k: outputs[k] for k in outputs.files}
        return [{k: v[i] for k, v in stacked.items()} for i in range(len(images))]
