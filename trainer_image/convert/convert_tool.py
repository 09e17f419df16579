"""The package ONNX -> TensorFlow SavedModel, TensorFlow Lite (float32, float16) or CoreML.

Run as a file by the converter environment's Python (trainer_image/convert/install.sh makes it;
trainer.packages.tf_package calls it), never imported by Loupe: TensorFlow's pins clash with
Loupe's, so it lives in its own virtual environment and imports only the converters.

    python convert_tool.py --onnx model.onnx --target tflite --labels labels.json --out DIR

The input ONNX is the package graph built for BGR 0-255 pixels ([1, 3, S, S] float32, the
normalisation inside). onnx2tf turns it into an NHWC graph ([1, S, S, 3]), which is what Custom
Vision's TensorFlow and TFLite samples feed. DIR receives exactly the package's model files. On a
failure the last stderr line is ``loupe-convert-error: <reason>`` and the exit status is 2.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ERROR_PREFIX = "loupe-convert-error: "
TARGETS = ("saved_model", "tflite", "tflite_fp16", "coreml", "coreml_fp16")
# onnx2tf fetches this sample file from the internet unless the working folder has it (it only
# feeds its own checks, which are off): random pixels in its place keep the conversion offline
ONNX2TF_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"


def fold_constants(src: Path, dst: Path) -> None:
    """onnxruntime's basic optimisations (standard ONNX ops only): the shape arithmetic of the
    exporter (e.g. EfficientNet-Lite's static padding: Pad fed by ConstantOfShape/Concat/Slice)
    becomes initializers; onnx2tf otherwise pads the wrong axes after its NCHW->NHWC transposition."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(dst)
    onnxruntime.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])


def patch_topk() -> None:
    """onnx2tf 1.29.24 calls int() on TopK's constant K, which numpy 2 refuses for the [1]-shaped K
    the ONNX standard gives (the static detector graph's top-k): its module gets an int() that
    takes a one-element array."""
    import builtins

    import numpy as np
    from onnx2tf.ops import TopK

    class OneElementInt(builtins.int):  # a type: the module also calls isinstance(k, int)
        def __new__(cls, value=0):
            if isinstance(value, np.ndarray):
                value = value.reshape(-1)[0]
            return super().__new__(cls, value)

    TopK.int = OneElementInt


def to_tensorflow(onnx_path: Path, work: Path, keep: Path | None) -> Path:
    """onnx2tf: a folder with the SavedModel and ``folded_float32.tflite``/``folded_float16.tflite``;
    moved to ``keep`` once complete when given, and taken from there when already present."""
    if keep is not None and (keep / "saved_model.pb").is_file():
        return keep
    import numpy as np
    import onnx2tf

    folded = work / "folded.onnx"
    fold_constants(onnx_path, folded)
    patch_topk()
    np.save(work / ONNX2TF_SAMPLE, np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32))
    out = work / "tf"
    cwd = Path.cwd()
    os.chdir(work)  # onnx2tf looks for the sample file in the working folder
    try:
        onnx2tf.convert(input_onnx_file_path=str(folded), output_folder_path=str(out), output_signaturedefs=True,
                        copy_onnx_input_output_names_to_tflite=True, not_use_onnxsim=True, non_verbose=True)
    finally:
        os.chdir(cwd)
    if keep is None:
        return out
    shutil.move(out, keep)  # whole or not at all: a failed conversion leaves nothing to reuse
    return keep


def save_named(tf_dir: Path, output_names: list[str], dst: Path) -> None:
    """Re-save onnx2tf's SavedModel with a ``serving_default`` whose outputs carry the ONNX names
    (onnx2tf's Keras export calls them output_0, output_1, ...)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(tf_dir))
    inner = loaded.signatures["serving_default"]
    (name, spec), = inner.structured_input_signature[1].items()

    @tf.function(input_signature=[tf.TensorSpec(spec.shape, spec.dtype, name=name)])
    def serve(data: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = inner(**{name: data})
        return {output_names[int(key.rsplit("_", 1)[1])]: value for key, value in outputs.items()}

    tf.saved_model.save(loaded, str(dst), signatures={"serving_default": serve})


def to_coreml(tf_dir: Path, labels: list[str], metadata: dict[str, str], output_names: list[str], float16: bool,
              dst: Path) -> None:
    """coremltools from the SavedModel (coremltools 9 has no ONNX frontend): an ML program
    (``.mlpackage``) whose input is an image (BGR, 0-255, the size of the package), so Apple's
    Vision framework feeds it; a classifier answers ``classLabel`` and its per-tag probabilities."""
    import coremltools as ct
    import tensorflow as tf

    signature = tf.saved_model.load(str(tf_dir)).signatures["serving_default"]
    (name, spec), = signature.structured_input_signature[1].items()
    classifier = output_names == ["model_output"]
    image = ct.ImageType(name=name, shape=tuple(spec.shape), color_layout=ct.colorlayout.BGR, scale=1.0)
    model = ct.convert(str(tf_dir), source="tensorflow", inputs=[image],
                       classifier_config=ct.ClassifierConfig(labels) if classifier else None,
                       convert_to="mlprogram", minimum_deployment_target=ct.target.iOS15,
                       compute_precision=ct.precision.FLOAT16 if float16 else ct.precision.FLOAT32)
    if not classifier:  # outputs by the ONNX names (the converter names them after the graph's Identity ops)
        model = _renamed(model, signature, output_names)
    model.short_description = f"Loupe model {metadata.get('Loupe.ModelName', '')}"
    model.user_defined_metadata.update(metadata)
    model.save(str(dst))


def _renamed(model, signature, output_names: list[str]):
    """onnx2tf's signature keys are output_<i> (the i-th ONNX output); its graph outputs come in the
    order of the sorted keys."""
    import coremltools as ct

    by_graph = {tensor.name.split(":")[0]: output_names[int(key.rsplit("_", 1)[1])]
                for key, tensor in zip(sorted(signature.structured_outputs), signature.outputs, strict=True)}
    spec = model.get_spec()
    for output in list(spec.description.output):
        if output.name in by_graph:
            ct.utils.rename_feature(spec, output.name, by_graph[output.name])
    return ct.models.MLModel(spec, weights_dir=model.weights_dir, skip_model_load=True)


def convert(onnx_path: Path, target: str, labels: list[str], out: Path, keep: Path | None) -> None:
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    metadata = {p.key: p.value for p in model.metadata_props}
    output_names = [o.name for o in model.graph.output]
    with tempfile.TemporaryDirectory(prefix="loupe-convert-") as tmp:
        tf_dir = to_tensorflow(onnx_path, Path(tmp), keep)
        out.mkdir(parents=True, exist_ok=True)
        if target == "saved_model":
            save_named(tf_dir, output_names, out)
        elif target in ("tflite", "tflite_fp16"):
            suffix = "float16" if target == "tflite_fp16" else "float32"
            shutil.copyfile(tf_dir / f"folded_{suffix}.tflite", out / "model.tflite")
        else:
            to_coreml(tf_dir, labels, metadata, output_names, target == "coreml_fp16", out / "model.mlpackage")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--onnx", type=Path, required=True)
    parser.add_argument("--target", choices=TARGETS, required=True)
    parser.add_argument("--labels", type=Path, required=True, help="JSON list of tag names, in output order")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tf-dir", type=Path, help="onnx2tf's output for this ONNX: reused when there, kept if not")
    args = parser.parse_args()
    try:
        convert(args.onnx, args.target, json.loads(args.labels.read_text()), args.out, args.tf_dir)
    except BaseException as exc:  # noqa: BLE001 - any converter failure is this job's reason, in one line
        lines = [line for line in str(exc).splitlines() if line.strip()] or [""]
        print(f"{ERROR_PREFIX}{type(exc).__name__}: {lines[0][:400]}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
