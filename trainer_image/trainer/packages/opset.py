"""A package graph at an older ONNX opset: Custom Vision's ``ONNX10`` / ``ONNX12`` flavors
(docs/exports.md#onnx10-and-onnx12).

``onnx.version_converter`` only downgrades the few operators that have down-adapters (most
"since 13" versions, type-only widenings such as Identity 16 or Shape 15, have none and stop it).
So each node is mapped here by what changed between its version at the model's opset and at the
target one:

- type or attribute widenings (most of them): the node is kept as it is, provided it uses none of
  the newer attributes with a non-default value (``_NEW_ATTRIBUTES``);
- inputs that became attributes (Squeeze/Unsqueeze/Split axes and sizes before 13, Clip bounds
  and Pad amounts before 11): moved back, when they are constants;
- Softmax/LogSoftmax before 13 coerce their input to 2-D at ``axis``: the same only on the last axis;
- negative axes before 11: made positive from the inferred rank;
- an operator that does not exist at the target (Range, ScatterElements or GreaterOrEqual at
  opset 10, for the detectors' post-processing): OpsetError naming them.

Then ``onnx.checker.check_model(full_check=True)`` validates every node against the older schemas
(inputs, attributes and types): what passes it is a model that opset's runtimes accept.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import AttributeProto, defs, helper, numpy_helper, shape_inference

# attribute -> its default, per operator: added after the older versions (a non-default value has
# no meaning there)
_NEW_ATTRIBUTES: dict[str, dict[str, object]] = {
    "Reshape": {"allowzero": 0},
    "Shape": {"start": 0, "end": None},
    "ScatterElements": {"reduction": b"none"},
    "RoiAlign": {"coordinate_transformation_mode": b"output_half_pixel"},
    "TopK": {"largest": 1, "sorted": 1},
    "Resize": {"antialias": 0, "keep_aspect_ratio_policy": b"stretch"},
}
# operators whose older versions take attributes where newer ones take inputs: (op, first opset
# with inputs) -> [(input index, attribute name)]
_INPUTS_TO_ATTRIBUTES: dict[tuple[str, int], list[tuple[int, str]]] = {
    ("Squeeze", 13): [(1, "axes")],
    ("Unsqueeze", 13): [(1, "axes")],
    ("Split", 13): [(1, "split")],
    ("Clip", 11): [(1, "min"), (2, "max")],
    ("Pad", 11): [(1, "pads"), (2, "value")],
}
_AXIS_ATTRIBUTES = ("axis", "axes")


class OpsetError(Exception):
    """The graph cannot be expressed at the asked opset; the message says why."""


def _since(op: str, opset: int) -> int | None:
    try:
        return defs.get_schema(op, opset).since_version
    except defs.SchemaError:
        return None


def _subgraphs(node: onnx.NodeProto):
    for attribute in node.attribute:
        if attribute.type == AttributeProto.GRAPH:
            yield attribute.g
        yield from attribute.graphs


def _all_graphs(graph: onnx.GraphProto):
    yield graph
    for node in graph.node:
        for sub in _subgraphs(node):
            yield from _all_graphs(sub)


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    found = {}
    for g in _all_graphs(graph):
        found.update({init.name: numpy_helper.to_array(init) for init in g.initializer})
        for node in g.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                value = next((a for a in node.attribute if a.name == "value"), None)
                if value is not None:
                    found[node.output[0]] = numpy_helper.to_array(value.t)
    return found


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    try:
        inferred = shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - ranks are a help; without them negative axes fail below
        return {}
    ranks = {}
    for g in _all_graphs(inferred.graph):
        for info in [*g.input, *g.output, *g.value_info]:
            tensor = info.type.tensor_type
            if tensor.HasField("shape"):
                ranks[info.name] = len(tensor.shape.dim)
    return ranks


def _attribute(node: onnx.NodeProto, name: str):
    found = next((a for a in node.attribute if a.name == name), None)
    return None if found is None else helper.get_attribute_value(found)


def _set_attribute(node: onnx.NodeProto, name: str, value) -> None:
    for i, attribute in enumerate(node.attribute):
        if attribute.name == name:
            del node.attribute[i]
            break
    node.attribute.append(helper.make_attribute(name, value))


def _convert_node(node: onnx.NodeProto, source: int, target: int, constants: dict[str, np.ndarray],
                  ranks: dict[str, int]) -> None:
    op = node.op_type
    old, new = _since(op, target), _since(op, source)
    if old is None:
        raise OpsetError(f"operator {op} does not exist at opset {target}")
    if old == new:
        return
    for name, default in _NEW_ATTRIBUTES.get(op, {}).items():
        value = _attribute(node, name)
        if value is None or _first_with(op, name, source) <= old:
            continue
        if value != default:
            raise OpsetError(f"{op} with {name}={value!r} (node {node.name!r}) has no equivalent at opset {target}")
        _drop_attribute(node, name)
    for (name, since), moves in _INPUTS_TO_ATTRIBUTES.items():
        if op != name or old >= since or new < since:
            continue
        inputs = list(node.input)
        for index, attribute in moves:
            if index >= len(inputs) or not inputs[index]:
                continue
            if inputs[index] not in constants:
                raise _Computed(f"{op}'s {attribute} (node {node.name!r}) is computed, not a constant: "
                                 f"opset {target} takes it as an attribute")
            value = constants[inputs[index]]
            as_attr = float(value) if value.ndim == 0 else [v.item() for v in value.reshape(-1)]
            _set_attribute(node, attribute, as_attr)
        del node.input[1:]
    if op in ("Softmax", "LogSoftmax") and old < 13 <= new:
        axis = _attribute(node, "axis")
        axis = -1 if axis is None else axis
        rank = ranks.get(node.input[0])
        if axis != -1 and (rank is None or axis != rank - 1):
            raise OpsetError(f"{op} over axis {axis} (node {node.name!r}) is not the last axis: before opset 13 "
                             "it normalises over the flattened trailing axes")
        _set_attribute(node, "axis", (rank - 1) if rank is not None else -1)
    if target < 11:
        for name in _AXIS_ATTRIBUTES:
            value = _attribute(node, name)
            if value is None or not np.any(np.asarray(value) < 0):
                continue
            rank = ranks.get(node.input[0])
            if op == "Unsqueeze" and rank is not None:
                rank += len(value)
            if rank is None:
                raise OpsetError(f"{op}'s negative {name} (node {node.name!r}) needs its input's rank before "
                                 "opset 11")
            fixed = [v % rank for v in value] if isinstance(value, list) else value % rank
            _set_attribute(node, name, fixed)


def _first_with(op: str, attribute: str, source: int) -> int:
    """The first version (up to ``source``) of ``op`` whose schema has ``attribute``."""
    versions = sorted({s.since_version for s in defs.get_all_schemas_with_history()
                       if s.name == op and s.domain == "" and s.since_version <= source})
    for version in versions:
        if attribute in defs.get_schema(op, version).attributes:
            return version
    return source + 1


def _drop_attribute(node: onnx.NodeProto, name: str) -> None:
    for i, attribute in enumerate(node.attribute):
        if attribute.name == name:
            del node.attribute[i]
            return


def _prune(graph: onnx.GraphProto) -> None:
    """Drop the initializers and Constant nodes nothing reads any more (the inputs moved into
    attributes), in every graph: a subgraph may read its outer graphs' names."""
    while True:
        read = {name for g in _all_graphs(graph) for n in g.node for name in n.input}
        read |= {o.name for o in graph.output}
        read |= {o.name for g in _all_graphs(graph) for o in g.output}
        removed = 0
        for g in _all_graphs(graph):
            keep = [i for i in g.initializer if i.name in read]
            removed += len(g.initializer) - len(keep)
            del g.initializer[:]
            g.initializer.extend(keep)
            nodes = [n for n in g.node if not (n.op_type == "Constant" and n.output[0] not in read)]
            removed += len(g.node) - len(nodes)
            del g.node[:]
            g.node.extend(nodes)
        if not removed:
            return


def _fill_resize_inputs(graph: onnx.GraphProto, node: onnx.NodeProto) -> None:
    """Resize-11 requires its roi and scales inputs: empty tensors where the node left them out."""
    inputs = list(node.input) + [""] * (3 - len(node.input))
    for index, part in ((1, "roi"), (2, "scales")):
        if not inputs[index]:
            name = f"{node.name or node.output[0]}/loupe_empty_{part}"
            graph.initializer.append(numpy_helper.from_array(np.zeros(0, np.float32), name))
            inputs[index] = name
    del node.input[:]
    node.input.extend(inputs if inputs[3:] and inputs[3] else inputs[:3])


def folded(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with what its fixed input shape makes constant folded (onnxruntime's basic
    optimisations: shape arithmetic such as EfficientNet-Lite's computed static padding)."""
    import tempfile
    from pathlib import Path

    import onnxruntime

    with tempfile.TemporaryDirectory() as folder:
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.log_severity_level = 3
        options.optimized_model_filepath = str(Path(folder) / "folded.onnx")
        onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        out = onnx.load(options.optimized_model_filepath)
    del out.metadata_props[:]
    out.metadata_props.extend(model.metadata_props)
    return out


def convert_opset(model: onnx.ModelProto, target: int) -> onnx.ModelProto:
    """``model`` (default-domain opset >= ``target``) rewritten for opset ``target``; OpsetError
    with the reason when it cannot be. An input that must become an attribute but is computed is
    retried once on the constant-folded graph."""
    try:
        return _convert(model, target)
    except _Computed:
        pass
    try:
        return _convert(folded(model), target)
    except _Computed as exc:
        raise OpsetError(str(exc)) from None


class _Computed(OpsetError):
    """An input that must become an attribute is computed."""


def _convert(model: onnx.ModelProto, target: int) -> onnx.ModelProto:
    source = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if source is None or source == target:
        return model
    if source < target:
        raise OpsetError(f"the model is at opset {source}, older than {target}")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    constants, ranks = _constants(out.graph), _ranks(out)
    missing = sorted({n.op_type for g in _all_graphs(out.graph) for n in g.node
                      if n.domain in ("", "ai.onnx") and _since(n.op_type, target) is None})
    if missing:
        raise OpsetError(f"operators {', '.join(missing)} do not exist at opset {target}")
    for graph in _all_graphs(out.graph):
        for node in graph.node:
            if node.domain in ("", "ai.onnx"):
                _convert_node(node, source, target, constants, ranks)
                if node.op_type == "Resize" and _since("Resize", target) == 11:
                    _fill_resize_inputs(graph, node)
    _prune(out.graph)
    used = {n.domain for g in _all_graphs(out.graph) for n in g.node}
    kept = [o for o in out.opset_import if o.domain in ("", "ai.onnx") or o.domain in used]
    del out.opset_import[:]
    out.opset_import.extend(kept)
    for opset in out.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = target
    # the IR version of that opset's ONNX release, so runtimes of that age read the file
    out.ir_version = min(out.ir_version, helper.find_min_ir_version_for([helper.make_opsetid("", target)]))
    try:
        onnx.checker.check_model(out, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        reason = " ".join(str(exc).split())[:400]
        raise OpsetError(f"the graph is not valid at opset {target}: {reason}") from None
    return out
