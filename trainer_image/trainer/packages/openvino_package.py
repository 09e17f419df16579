"""The package's ONNX -> OpenVINO IR (model.xml + model.bin), with ``openvino``.

Built from the ONNX made for OPENVINO_PIXELS (RGB, 0-1): Custom Vision's OpenVINO sample feeds
``np.array(image) / 255`` in RGB and reads the outputs by name. Weights stay float32
(``compress_to_fp16=False``); run it with ``INFERENCE_PRECISION_HINT: f32``, the CPU plugin's
default bf16 on AMX/AVX512-BF16 CPUs drifts from Loupe's scores.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import onnx

from trainer.packages.manifest import PackageError

XML_FILE = "model.xml"
BIN_FILE = "model.bin"
F32_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


def to_openvino(model: onnx.ModelProto) -> dict[str, bytes]:
    """{model.xml: ..., model.bin: ...} for the package ONNX ``model``."""
    import openvino as ov

    with tempfile.TemporaryDirectory(prefix="loupe-openvino-") as tmp:
        folder = Path(tmp)
        onnx_path = folder / "model.onnx"
        onnx.save(model, str(onnx_path))
        try:
            converted = ov.convert_model(str(onnx_path))
            ov.save_model(converted, str(folder / XML_FILE), compress_to_fp16=False)
        except Exception as exc:  # noqa: BLE001 - openvino raises its own RuntimeError/OpConversionFailure
            raise PackageError(f"OpenVINO conversion failed: {exc}") from None
        return {XML_FILE: (folder / XML_FILE).read_bytes(), BIN_FILE: (folder / BIN_FILE).read_bytes()}
