"""Loupe model folder -> the ONNX of a Custom Vision export package (graph surgery with ``onnx``).

Consumers (Azure-Samples/customvision-export-samples) resize the whole image to the input's
fixed size (no letterbox), pass NCHW float pixels in the order and range the model's
``metadata_props`` name, and read the outputs by name. Everything else Loupe's preprocessing does
((x/255 - mean)/std, RGB order, the resize to a non-square network input) is prepended to the
original graph here; its nodes are kept as they are.

The input is square (side = the network's larger side) because the samples call
``PIL.Image.resize(input_shape[2:])`` with (H, W) where PIL wants (W, H): only a square input
survives that. Outputs: classifiers ``model_output`` [1, C] (one score per tag, labels.txt order);
detectors ``detected_boxes`` [1, K, 4] (x1, y1, x2, y2 relative to the image, 0-1),
``detected_classes`` [1, K] int64 and ``detected_scores`` [1, K].
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from loupe.artifacts import LABELS_FILE, MODEL_FILE, PREPROCESSING_FILE, Preprocessing, labels_from_json
from trainer.packages.manifest import PackageError

INPUT_NAME = "data"
CLASSIFIER_OUTPUT = "model_output"
DETECTOR_OUTPUTS = ("detected_boxes", "detected_classes", "detected_scores")
_P = "loupe_package/"  # prefix of every added node, tensor and initializer name


@dataclass(frozen=True)
class PixelFormat:
    """How the consumer feeds pixels: channel order and range (the ONNX metadata_props)."""

    bgr: bool
    range_255: bool

    def metadata(self) -> dict[str, str]:
        return {
            "Image.BitmapPixelFormat": "Bgr8" if self.bgr else "Rgb8",
            "Image.ColorSpaceGamma": "SRGB",
            "Image.NominalPixelRange": "NominalRange_0_255" if self.range_255 else "Normalized_0_1",
        }


# Custom Vision's ONNX exports: BGR, 0-255; its OpenVINO sample feeds RGB scaled to 0-1
ONNX_PIXELS = PixelFormat(bgr=True, range_255=True)
OPENVINO_PIXELS = PixelFormat(bgr=False, range_255=False)


@dataclass(frozen=True)
class LoupeModel:
    name: str
    model: onnx.ModelProto
    labels: list[str]
    pre: Preprocessing

    @property
    def is_detector(self) -> bool:
        return self.pre.task == "detection"

    @property
    def side(self) -> int:
        return max(self.pre.size)


def read_model_folder(folder: Path) -> LoupeModel:
    try:
        model = onnx.load(str(folder / MODEL_FILE))
    except Exception as exc:  # OSError, or protobuf's DecodeError for a corrupt or truncated file
        raise PackageError(f"model folder {folder.name!r} is not a usable Loupe model: {MODEL_FILE} cannot be "
                           f"read: {exc}") from None
    try:
        labels = labels_from_json((folder / LABELS_FILE).read_bytes())
        pre = Preprocessing.model_validate_json((folder / PREPROCESSING_FILE).read_bytes())
    except (OSError, ValueError) as exc:
        raise PackageError(f"model folder {folder.name!r} is not a usable Loupe model: {exc}") from None
    if [i.name for i in model.graph.input] != [pre.input_name]:
        raise PackageError(f"{MODEL_FILE} has inputs {[i.name for i in model.graph.input]}; "
                           f"expected [{pre.input_name!r}]")
    return LoupeModel(folder.name, model, labels, pre)


def _const(name: str, values: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(values, _P + name)


def _input_nodes(src: LoupeModel, pixels: PixelFormat) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """data (consumer pixels, [1,3,S,S]) -> the original input tensor (Loupe's normalised input)."""
    pre = src.pre
    std = np.asarray(pre.std, np.float32)
    # x_norm = x * scale - bias, per RGB channel, with x in the consumer's range
    scale = (1.0 / ((255.0 if pixels.range_255 else 1.0) * std)).reshape(1, 3, 1, 1).astype(np.float32)
    bias = (np.asarray(pre.mean, np.float32) / std).reshape(1, 3, 1, 1).astype(np.float32)
    inits = [_const("scale", scale), _const("bias", bias)]
    nodes, current = [], INPUT_NAME
    if pixels.bgr:
        inits.append(_const("bgr_to_rgb", np.asarray([2, 1, 0], np.int64)))
        nodes.append(helper.make_node("Gather", [current, _P + "bgr_to_rgb"], [_P + "rgb"], axis=1, name=_P + "rgb"))
        current = _P + "rgb"
    nodes.append(helper.make_node("Mul", [current, _P + "scale"], [_P + "scaled"], name=_P + "scaled"))
    height, width = pre.size
    last = pre.input_name if (height, width) == (src.side, src.side) else _P + "normalised"
    nodes.append(helper.make_node("Sub", [_P + "scaled", _P + "bias"], [last], name=_P + "normalised"))
    if last != pre.input_name:  # square package input -> the network's non-square input (a stretch)
        inits.append(_const("sizes", np.asarray([1, 3, height, width], np.int64)))
        nodes.append(helper.make_node("Resize", [last, "", "", _P + "sizes"], [pre.input_name], mode="linear",
                                      coordinate_transformation_mode="half_pixel",
                                      name=_P + "resize"))
    return nodes, inits


def _output_nodes(src: LoupeModel) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], list[onnx.ValueInfoProto]]:
    """The original outputs -> the package's (names, batch axis, relative boxes)."""
    if not src.is_detector:
        scores = src.pre.output_names[0]
        return ([helper.make_node("Identity", [scores], [CLASSIFIER_OUTPUT], name=_P + "scores")], [],
                [helper.make_tensor_value_info(CLASSIFIER_OUTPUT, TensorProto.FLOAT, [1, len(src.labels)])])
    height, width = src.pre.size
    inits = [_const("axis0", np.asarray([0], np.int64)),
             _const("box_scale", np.asarray([1 / width, 1 / height] * 2, np.float32)),
             _const("zero", np.asarray(0, np.float32)), _const("one", np.asarray(1, np.float32))]
    boxes, classes, scores = DETECTOR_OUTPUTS
    nodes = [
        # network-input pixels -> 0-1 of the image (a letterboxed model's padding is not in the input)
        helper.make_node("Mul", ["boxes", _P + "box_scale"], [_P + "rel"], name=_P + "rel"),
        helper.make_node("Clip", [_P + "rel", _P + "zero", _P + "one"], [_P + "clipped"], name=_P + "clip"),
        helper.make_node("Unsqueeze", [_P + "clipped", _P + "axis0"], [boxes], name=_P + boxes),
        helper.make_node("Unsqueeze", ["labels", _P + "axis0"], [classes], name=_P + classes),
        helper.make_node("Unsqueeze", ["scores", _P + "axis0"], [scores], name=_P + scores),
    ]
    outputs = [helper.make_tensor_value_info(boxes, TensorProto.FLOAT, [1, "detections", 4]),
               helper.make_tensor_value_info(classes, TensorProto.INT64, [1, "detections"]),
               helper.make_tensor_value_info(scores, TensorProto.FLOAT, [1, "detections"])]
    return nodes, inits, outputs


def package_graph(src: LoupeModel, pixels: PixelFormat) -> onnx.ModelProto:
    """The original graph with the input normalisation prepended and the outputs renamed, a fixed
    [1, 3, S, S] float32 input, and the pixel-format metadata_props."""
    model = onnx.ModelProto()
    model.CopyFrom(src.model)
    graph = model.graph
    in_nodes, in_inits = _input_nodes(src, pixels)
    out_nodes, out_inits, outputs = _output_nodes(src)
    nodes = [*in_nodes, *graph.node, *out_nodes]
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend([*in_inits, *out_inits])
    del graph.input[:]
    graph.input.append(helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 3, src.side, src.side]))
    del graph.output[:]
    graph.output.extend(outputs)
    # the exporter's intermediate shapes may carry a dynamic batch name; the batch is now 1
    del graph.value_info[:]
    del model.metadata_props[:]
    for key, value in {**pixels.metadata(), "Loupe.ModelName": src.name}.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise PackageError(f"the package graph is invalid: {exc}") from None
    return model


def to_float16(model: onnx.ModelProto, detector: bool) -> onnx.ModelProto:
    """A tensor(float16) input (the samples cast to it). Classifiers: float16 weights and
    activations throughout. Detectors: float32 inside, after a Cast of the input, for now: the
    converter rewrites the If branches of the in-graph NMS to float16 even when blocked (and its
    outer-scope tensors with them), which onnxruntime rejects (docs/exports.md)."""
    if detector:
        return _float16_input(model)
    from onnxruntime.transformers.float16 import convert_float_to_float16

    try:
        converted = convert_float_to_float16(model, keep_io_types=False, disable_shape_infer=False)
    except Exception as exc:  # noqa: BLE001 - onnxruntime's converter raises plain exceptions
        raise PackageError(f"float16 conversion failed: {exc}") from None
    return converted


def to_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """The package graph at ONNX ``opset`` (Custom Vision's ONNX10 / ONNX12 flavors: runtimes of
    that age); PackageError with the reason where the graph cannot be expressed there
    (trainer.packages.opset)."""
    from trainer.packages.opset import OpsetError, convert_opset

    try:
        return convert_opset(model, opset)
    except OpsetError as exc:
        raise PackageError(f"the model cannot be exported at ONNX opset {opset}: {exc}") from None


def _float16_input(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    (inp,) = graph.input
    internal = _P + "data_float32"
    for node in graph.node:
        node.input[:] = [internal if name == inp.name else name for name in node.input]
    graph.node.insert(0, helper.make_node("Cast", [inp.name], [internal], to=TensorProto.FLOAT, name=_P + "cast"))
    inp.type.tensor_type.elem_type = TensorProto.FLOAT16
    return out


def metadata_of(model: onnx.ModelProto) -> dict[str, str]:
    return {entry.key: entry.value for entry in model.metadata_props}
