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
