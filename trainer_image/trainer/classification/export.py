"""Export a trained classifier as the model artifact contract (loupe/artifacts.py) and prove
the ONNX graph computes what the torch model computes, on real preprocessed images."""

from __future__ import annotations

import copy
import json
import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from loupe.artifacts import LABELS_FILE, MODEL_FILE, PREPROCESSING_FILE
from trainer.classification.result import ClassifierResult

log = logging.getLogger(__name__)

OPSET = 17
# probabilities in [0, 1]: float32 CPU kernels of torch and onnxruntime agree far closer
MAX_ABS_DIFF = 1e-4


class ExportCheckFailed(RuntimeError):
    """The exported graph does not reproduce the torch model: never ship it."""


def export_classifier(
    result: ClassifierResult, out_dir: Path, progress: Callable[[str, float, str], None] | None = None
) -> dict[str, float]:
    """Write model.onnx, labels.json and preprocessing.json into ``out_dir`` and verify the ONNX
    model with onnxruntime against the torch model; returns the check's figures."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pre = result.preprocessing
    if progress:
        progress("exporting", 97.5, "writing the ONNX model")
    model = copy.deepcopy(result.model).to("cpu").float().eval()
    model.channels_last = False  # the graph is traced as the plain NCHW network
    height, width = pre.size
    example = torch.from_numpy(np.ascontiguousarray(result.check_inputs[:1], dtype=np.float32))
    model_path = out_dir / MODEL_FILE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model,
            (example,),
            str(model_path),
            dynamo=False,
            opset_version=OPSET,
            input_names=[pre.input_name],
            output_names=list(pre.output_names),
            dynamic_axes={pre.input_name: {0: "batch"}, pre.output_names[0]: {0: "batch"}},
            do_constant_folding=True,
            external_data=False,
        )
    onnx.checker.check_model(str(model_path))
    (out_dir / LABELS_FILE).write_text(json.dumps(result.labels, ensure_ascii=False), encoding="utf-8")
    (out_dir / PREPROCESSING_FILE).write_text(pre.model_dump_json(indent=2), encoding="utf-8")
    if progress:
        progress("exporting", 98.5, "checking the ONNX model against the trained model")
    figures = verify_onnx(
        model,
        model_path,
        result.check_inputs,
        input_name=pre.input_name,
        output_name=pre.output_names[0],
        num_classes=len(result.labels),
        input_shape=(3, height, width),
    )
    log.info("ONNX export verified: %s", figures)
    return figures


def verify_onnx(
    model: torch.nn.Module,
    model_path: Path,
    inputs: np.ndarray,
    *,
    input_name: str,
    output_name: str,
    num_classes: int,
    input_shape: tuple[int, int, int],
) -> dict[str, float]:
    """Compare onnxruntime and torch on a batch and on a single image (the batch axis is dynamic)."""
    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    if inputs.ndim != 4 or inputs.shape[1:] != input_shape or len(inputs) == 0:
        raise ExportCheckFailed(
            f"check inputs have shape {inputs.shape}; expected [k>0, {', '.join(map(str, input_shape))}]"
        )
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    names_in = [i.name for i in session.get_inputs()]
    names_out = [o.name for o in session.get_outputs()]
    if names_in != [input_name] or names_out != [output_name]:
        raise ExportCheckFailed(
            f"ONNX graph has inputs {names_in} and outputs {names_out}; "
            f"expected [{input_name!r}] and [{output_name!r}]"
        )
    worst = 0.0
    for batch in (inputs, inputs[:1]):
        (got,) = session.run([output_name], {input_name: batch})
        with torch.no_grad():
            want = model(torch.from_numpy(batch)).numpy()
        if got.shape != (len(batch), num_classes):
            raise ExportCheckFailed(
                f"ONNX output {output_name!r} has shape {got.shape}; expected ({len(batch)}, {num_classes})"
            )
        if not np.isfinite(got).all():
            raise ExportCheckFailed("ONNX output contains non-finite values")
        worst = max(worst, float(np.abs(got - want).max()))
    if worst > MAX_ABS_DIFF:
        raise ExportCheckFailed(
            f"onnxruntime and torch disagree by {worst:.2e} (> {MAX_ABS_DIFF:.0e}) on the same inputs"
        )
    return {"max_abs_diff": worst, "checked_images": float(len(inputs))}
