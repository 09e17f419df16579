"""The detector weights artifact (``loupe.artifacts.DETECTOR_WEIGHTS_FILE``) and the static-shape
ONNX built from it at package time (``static_graph``), checked against the torch model.

An export job only has the model's artifacts; model.onnx's NMS cannot be made static by graph
surgery, so training also saves the weights, the DetectorConfig that rebuilds the network, and a
few of the inputs export_detector checked (the network's input tensors, float16) to check the
rebuilt static graph on real images.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch

from loupe.artifacts import Preprocessing
from trainer.detection.config import DetectorConfig
from trainer.detection.export import OPSET, OUTPUTS, DetectionGraph, ExportMismatch, verify
from trainer.detection.model import build_detector
from trainer.detection.static_graph import static_detector

WEIGHTS_FORMAT = 1
CHECK_INPUTS = 3  # real images kept to check the static graph (plus a blank one, made at check time)


class WeightsUnusable(ValueError):
    """The weights artifact cannot be read or rebuilt into the network."""


def save_weights(path: Path, model: torch.nn.Module, config: DetectorConfig, inputs: list[np.ndarray]) -> None:
    payload = {"format": WEIGHTS_FORMAT, "config": config.model_dump(mode="json"),
               "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "check_inputs": torch.from_numpy(np.stack(inputs[:CHECK_INPUTS]).astype(np.float16))}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    Path(path).write_bytes(buffer.getvalue())


def load_weights(path: Path) -> tuple[torch.nn.Module, DetectorConfig, list[np.ndarray]]:
    """(the trained network in eval mode, its config, the check inputs)."""
    try:
        payload = torch.load(io.BytesIO(Path(path).read_bytes()), map_location="cpu", weights_only=True)
        if payload.get("format") != WEIGHTS_FORMAT:
            raise ValueError(f"format {payload.get('format')!r}, expected {WEIGHTS_FORMAT}")
        config = DetectorConfig.model_validate(payload["config"])
        model = build_detector(config, pretrained=False)
        model.load_state_dict(payload["model"])
    except Exception as exc:  # noqa: BLE001 - a torn, foreign or incompatible file: one reason
        raise WeightsUnusable(f"{Path(path).name} cannot be used: {type(exc).__name__}: {exc}") from None
    return model.eval(), config, [x.astype(np.float32) for x in payload["check_inputs"].numpy()]


def export_static(weights: Path, pre: Preprocessing, out_path: Path) -> int:
    """Write the static-shape ONNX (input ``pre.input_name`` [1,3,H,W], outputs boxes [K,4],
    scores [K], labels [K]) of the detector in ``weights`` to ``out_path`` after checking it
    against the torch model on the saved inputs; returns K. Raises WeightsUnusable,
    StaticGraphUnsupported, ExportMismatch."""
    import onnxruntime

    model, config, inputs = load_weights(weights)
    static = static_detector(model, tuple(pre.size))
    example = torch.zeros(1, 3, *pre.size)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(static, (example,), str(out_path), input_names=[pre.input_name], output_names=OUTPUTS,
                          opset_version=OPSET, do_constant_folding=True, dynamo=False)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(out_path), options, providers=["CPUExecutionProvider"])
    blank = np.full((3, *pre.size), pre.pad_value, dtype=np.float32)
    try:
        verify(session, DetectionGraph(model).eval(), [*inputs, blank], config.score_threshold)
    except ExportMismatch as exc:
        raise ExportMismatch(f"the static-shape graph disagrees with the trained detector: {exc}") from None
    return int(session.get_outputs()[1].shape[0])
