"""Graph rewrites the preparation recipes apply to ONNX models: folding dequantisation of
constant weights, PRelu rewrites, pruning, FP16 conversion and symbolic input sizes."""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from facefusion_ray.errors import ModelError

logger = logging.getLogger(__name__)


def drop_stale_inputs(graph: onnx.GraphProto) -> None:
    """Remove graph inputs that are really initializers, or that no node reads.

    Old exporters listed every weight as a graph input; a runtime then treats it as a value
    the caller may override, which blocks constant folding. The SFace int8 build also still
    lists its original FP32 weights, which nothing reads but onnxruntime demands in every feed.
    """
    initializers = {initializer.name for initializer in graph.initializer}
    read = {name for node in graph.node for name in node.input}
    read.update(value.name for value in graph.output)
    kept = [value for value in graph.input if value.name not in initializers and value.name in read]
    del graph.input[:]
    graph.input.extend(kept)


def strip_per_tensor_block_size(graph: onnx.GraphProto) -> None:
    """Remove `block_size` from DequantizeLinear nodes whose scale is a single value."""
    dims = {initializer.name: tuple(initializer.dims) for initializer in graph.initializer}
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or node.input[1] not in dims:
            continue
        scale_dims = dims[node.input[1]]
        if len(scale_dims) <= 1 and int(np.prod(scale_dims)) == 1:
            kept = [attribute for attribute in node.attribute if attribute.name != "block_size"]
            del node.attribute[:]
            node.attribute.extend(kept)


def dequantize(
    quantized: np.ndarray,
    scale: np.ndarray,
    zero_point: np.ndarray | None,
    axis: int = 1,
    block_size: int = 0,
) -> np.ndarray:
    """DequantizeLinear semantics: per-tensor, per-axis or blocked along `axis`."""
    values = quantized.astype(np.float32)
    offsets = np.zeros_like(scale, dtype=np.float32) if zero_point is None else zero_point
    offsets = offsets.astype(np.float32)
    if quantized.ndim > 0:
        axis %= quantized.ndim
    if block_size > 0 and scale.ndim == quantized.ndim and quantized.ndim > 0:
        length = quantized.shape[axis]
        scale = np.repeat(scale, block_size, axis=axis).take(range(length), axis=axis)
        offsets = np.repeat(offsets, block_size, axis=axis).take(range(length), axis=axis)
    elif scale.size > 1:
        broadcast_shape = [1] * quantized.ndim
        broadcast_shape[axis] = scale.size
        scale = scale.reshape(broadcast_shape)
        offsets = offsets.reshape(broadcast_shape)
    else:
        scale = scale.reshape(())
        offsets = offsets.reshape(())
    return ((values - offsets) * scale.astype(np.float32)).astype(scale.dtype)


def fold_constant_dequantize(graph: onnx.GraphProto) -> int:
    """Replace DequantizeLinear nodes of constant inputs by FP32 initializers; returns count."""
    return _fold_constant_nodes(graph, "DequantizeLinear", _evaluate_dequantize)


def fold_constant_reshape(graph: onnx.GraphProto) -> int:
    """Replace Reshape nodes of constant inputs (weights reshaped for Conv) by initializers."""
    return _fold_constant_nodes(graph, "Reshape", _evaluate_reshape)


def rewrite_prelu(graph: onnx.GraphProto) -> int:
    """PRelu(x, slope) -> Relu(x) + slope * Min(x, 0), for constant slopes; returns the count.

    The result is bit-identical; onnxruntime's CPU PRelu with a per-channel slope is several
    times slower than these vectorised ops (it took 16 of SFace's 30 ms per call).
    """
    initializers = {initializer.name: initializer for initializer in graph.initializer}
    zero_names: dict[int, str] = {}
    rewritten: list[onnx.NodeProto] = []
    count = 0
    for node in graph.node:
        if node.op_type != "PRelu" or node.input[1] not in initializers:
            rewritten.append(node)
            continue
        data, slope = node.input[0], node.input[1]
        data_type = initializers[slope].data_type
        if data_type not in zero_names:
            zero_names[data_type] = _unique_name(initializers, f"prelu_zero_{data_type}")
            zero = onnx.helper.make_tensor(zero_names[data_type], data_type, [], [0])
            graph.initializer.append(zero)
            initializers[zero.name] = zero
        prefix = node.output[0]
        rewritten.extend(
            [
                onnx.helper.make_node("Relu", [data], [f"{prefix}/positive"]),
                onnx.helper.make_node("Min", [data, zero_names[data_type]], [f"{prefix}/negative"]),
                onnx.helper.make_node("Mul", [f"{prefix}/negative", slope], [f"{prefix}/scaled"]),
                onnx.helper.make_node(
                    "Add", [f"{prefix}/positive", f"{prefix}/scaled"], [node.output[0]]
                ),
            ]
        )
        count += 1
    del graph.node[:]
    graph.node.extend(rewritten)
    return count


def remove_unused(graph: onnx.GraphProto) -> None:
    """Drop nodes whose outputs nobody reads, then initializers and value infos nobody names."""
    graph_outputs = {value.name for value in graph.output}
    while True:
        consumed = graph_outputs | {name for node in graph.node for name in node.input}
        kept = [node for node in graph.node if any(out in consumed for out in node.output)]
        if len(kept) == len(graph.node):
            break
        del graph.node[:]
        graph.node.extend(kept)
    consumed = graph_outputs | {name for node in graph.node for name in node.input}
    initializers = [init for init in graph.initializer if init.name in consumed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    produced = {name for node in graph.node for name in node.output}
    value_infos = [info for info in graph.value_info if info.name in produced]
    del graph.value_info[:]
    graph.value_info.extend(value_infos)


def repair_quantized_graph(model: onnx.ModelProto) -> None:
    """Only what the source needs to load and run everywhere; weights stay int8."""
    drop_stale_inputs(model.graph)
    strip_per_tensor_block_size(model.graph)


def dequantize_to_fp32(model: onnx.ModelProto) -> None:
    repair_quantized_graph(model)
    graph = model.graph
    folded = fold_constant_dequantize(graph)
    reshaped = fold_constant_reshape(graph)
    prelus = rewrite_prelu(graph)
    remove_unused(graph)
    logger.info(
        "folded %d DequantizeLinear and %d Reshape nodes, rewrote %d PRelu",
        folded,
        reshaped,
        prelus,
    )


def keep_graph(model: onnx.ModelProto) -> None:
    """For sources that load as they are: only the IR version is adjusted and checked."""


def convert_to_float16(model: onnx.ModelProto) -> None:
    """FP16 weights and activations; graph inputs and outputs stay FP32.

    The converter's default op block list is enough for onnxruntime's CPU provider: where it
    lacks an FP16 kernel (Conv, Resize, InstanceNormalization, ... on x86) it inserts casts and
    computes in FP32, so the variant runs everywhere and only pays off on GPUs.
    """
    # Imported here: the onnxruntime.transformers package is heavy and only this recipe needs it.
    from onnxruntime.transformers.float16 import convert_float_to_float16

    converted = convert_float_to_float16(model, keep_io_types=True)
    if converted is not model:
        model.CopyFrom(converted)
    sort_topologically(model.graph)


def sort_topologically(graph: onnx.GraphProto) -> None:
    """Reorder nodes so each comes after the producers of its inputs, keeping the given order
    where it is already valid (the FP16 converter appends its casts at the end of the graph)."""
    nodes = list(graph.node)
    producer = {name: index for index, node in enumerate(nodes) for name in node.output}
    waiting_on = [0] * len(nodes)
    consumers: dict[int, list[int]] = {}
    for index, node in enumerate(nodes):
        sources = {producer[name] for name in node.input if name in producer}
        waiting_on[index] = len(sources)
        for source in sources:
            consumers.setdefault(source, []).append(index)
    ready = [index for index, count in enumerate(waiting_on) if count == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for consumer in consumers.get(index, []):
            waiting_on[consumer] -= 1
            if waiting_on[consumer] == 0:
                heapq.heappush(ready, consumer)
    if len(order) != len(nodes):
        raise ModelError("graph has a cycle; its nodes cannot be ordered")
    del graph.node[:]
    graph.node.extend(nodes[index] for index in order)


# A constant target shape made only of these (Reshape's -1 and 0, broadcasting's 1) adapts to
# any input size; any other entry fixes a dimension.
_FLEXIBLE_SHAPE_ENTRIES = frozenset({-1, 0, 1})


def shape_baking_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """Nodes that tie the graph to the input size it was exported with (conservatively)."""
    constants = {initializer.name: initializer for initializer in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = node.attribute[0].t
    return [node for node in graph.node if _bakes_shape(node, constants)]


def _bakes_shape(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> bool:
    if node.op_type in {"Reshape", "Expand", "ConstantOfShape"}:
        shape_input = node.input[0 if node.op_type == "ConstantOfShape" else 1]
        if shape_input not in constants:
            return False
        shape = numpy_helper.to_array(constants[shape_input]).reshape(-1).tolist()
        # A Reshape with one inferred (-1) dimension, e.g. [1, -1, 4] gathering detector
        # anchors, follows the input size instead of fixing it.
        if node.op_type == "Reshape" and shape.count(-1) == 1:
            return False
        return not set(shape) <= _FLEXIBLE_SHAPE_ENTRIES
    if node.op_type == "Resize":
        return len(node.input) > 3 and node.input[3] in constants
    # Flatten feeds fully connected layers, whose weights fix the feature count.
    return node.op_type == "Flatten"


def make_spatial_dims_symbolic(model: onnx.ModelProto) -> bool:
    """Turn the height and width of image inputs into symbolic dims; True if anything changed.

    Leaves the model as it is when a node bakes the exported size into the graph, or when no
    4-D input has a recognisable channel axis (1, 3 or 4 channels, first or last).
    """
    graph = model.graph
    baking = shape_baking_nodes(graph)
    if baking:
        names = ", ".join(f"{node.op_type} {node.name}" for node in baking[:3])
        logger.info("keeping the fixed input size: %d nodes bake it in (%s)", len(baking), names)
        return False
    initializers = {initializer.name for initializer in graph.initializer}
    images = [
        (value, axes)
        for value in graph.input
        if value.name not in initializers and (axes := _spatial_axes(value)) is not None
    ]
    if not images:
        return False
    for value, axes in images:
        dims = value.type.tensor_type.shape.dim
        for axis, label in zip(axes, ("height", "width"), strict=True):
            dims[axis].dim_param = label if len(images) == 1 else f"{value.name}_{label}"
    _infer_output_shapes(model)
    return True


def _spatial_axes(value: onnx.ValueInfoProto) -> tuple[int, int] | None:
    tensor = value.type.tensor_type
    if tensor.elem_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16):
        return None
    dims = tensor.shape.dim
    if len(dims) != 4 or not all(dim.HasField("dim_value") for dim in dims[1:]):
        return None
    channels_first = dims[1].dim_value in (1, 3, 4)
    channels_last = dims[3].dim_value in (1, 3, 4)
    if channels_first and not channels_last:
        return 2, 3
    if channels_last and not channels_first:
        return 1, 2
    return None


def _infer_output_shapes(model: onnx.ModelProto) -> None:
    """Replace the declared output shapes by what follows from the (new) input shapes."""
    graph = model.graph
    del graph.value_info[:]
    for output in graph.output:
        output.type.tensor_type.ClearField("shape")
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes = {output.name: output.type.tensor_type for output in inferred.graph.output}
    for output in graph.output:
        tensor = shapes.get(output.name)
        if tensor is None or not tensor.HasField("shape"):
            continue
        output.type.tensor_type.shape.CopyFrom(tensor.shape)
        for axis, dim in enumerate(output.type.tensor_type.shape.dim):
            unnamed = not dim.dim_param or dim.dim_param.startswith("unk__")
            if not dim.HasField("dim_value") and unnamed:
                dim.dim_param = f"{output.name}_{axis}"


def _fold_constant_nodes(
    graph: onnx.GraphProto,
    op_type: str,
    evaluate: Callable[[onnx.NodeProto, list[np.ndarray | None]], np.ndarray],
) -> int:
    initializers = {initializer.name: initializer for initializer in graph.initializer}
    graph_inputs = {value.name for value in graph.input}
    kept: list[onnx.NodeProto] = []
    folded = 0
    for node in graph.node:
        names = list(node.input)
        constant = all(
            not name or (name in initializers and name not in graph_inputs) for name in names
        )
        if node.op_type != op_type or not constant or len(node.output) != 1:
            kept.append(node)
            continue
        arrays = [numpy_helper.to_array(initializers[name]) if name else None for name in names]
        folded_tensor = numpy_helper.from_array(evaluate(node, arrays), node.output[0])
        graph.initializer.append(folded_tensor)
        initializers[folded_tensor.name] = folded_tensor
        folded += 1
    del graph.node[:]
    graph.node.extend(kept)
    return folded


def _unique_name(taken: dict[str, onnx.TensorProto], wanted: str) -> str:
    name, suffix = wanted, 1
    while name in taken:
        name, suffix = f"{wanted}_{suffix}", suffix + 1
    return name


def _attribute(node: onnx.NodeProto, name: str, default: int) -> int:
    for attribute in node.attribute:
        if attribute.name == name:
            return int(onnx.helper.get_attribute_value(attribute))
    return default


def _evaluate_dequantize(node: onnx.NodeProto, arrays: list[np.ndarray | None]) -> np.ndarray:
    quantized, scale = arrays[0], arrays[1]
    if quantized is None or scale is None:
        raise ModelError(f"DequantizeLinear {node.name} lacks its data or scale input")
    zero_point = arrays[2] if len(arrays) > 2 else None
    return dequantize(
        quantized,
        scale,
        zero_point,
        axis=_attribute(node, "axis", 1),
        block_size=_attribute(node, "block_size", 0),
    )


def _evaluate_reshape(node: onnx.NodeProto, arrays: list[np.ndarray | None]) -> np.ndarray:
    data, shape = arrays[0], arrays[1]
    if data is None or shape is None:
        raise ModelError(f"Reshape {node.name} lacks its data or shape input")
    allow_zero = _attribute(node, "allowzero", 0) == 1
    target = [
        data.shape[index] if size == 0 and not allow_zero else int(size)
        for index, size in enumerate(shape.tolist())
    ]
    return data.reshape(target)
