"""Small generated ONNX files that stand in for models this machine cannot download.

A stand-in has the real model's input and output names, ranks, dtypes and sizes (symbolic where
the manifest says so), and computes something cheap that depends on every input: images are
convolved or pooled, vectors and image means go through a dense layer. It is marked as a
stand-in in its producer name, doc string and metadata, and must never be shipped, cached or
reported as the model it imitates.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from facefusion_ray.zoo.manifest import ModelSpec, TensorSpec
from facefusion_ray.zoo.model_metadata import extract_metadata, metadata_path, write_metadata

STANDIN_PRODUCER = "facefusion-ray stand-in"
STANDIN_OPSET = 17
STANDIN_IR_VERSION = 10
# How far (0-255) a swap with an FP16 model may stray from the FP32 one, per pixel value: the
# tests and benchmarks/gpu_check.py hold the FP16 swapper to it.
FP16_MAX_PIXEL_DIFFERENCE = 2

_ONNX_TYPES = {
    "float32": TensorProto.FLOAT,
    "float16": TensorProto.FLOAT16,
    "float64": TensorProto.DOUBLE,
    "int64": TensorProto.INT64,
    "int32": TensorProto.INT32,
    "uint8": TensorProto.UINT8,
    "bool": TensorProto.BOOL,
}


def build_standin(spec: ModelSpec, path: Path, batch: int = 1, metadata: bool = False) -> Path:
    """Write a stand-in for `spec` to `path`. `batch` replaces a leading dimension of 1; with
    `metadata`, the metadata preparation would store goes beside it."""
    graph = _GraphBuilder()
    inputs = [_resized_batch(tensor, batch) for tensor in spec.inputs]
    outputs = [_resized_batch(tensor, batch) for tensor in spec.outputs]
    features = _InputFeatures(graph, inputs)
    strides = _strides(spec)
    for index, output in enumerate(outputs):
        if _is_image(output) and features.image is not None:
            _image_output(graph, features, output)
        elif isinstance(output.shape[0], str) and len(output.shape) == 2 and strides:
            _anchor_output(graph, features, output, strides[index % len(strides)], spec)
        else:
            _dense_output(graph, features, output)
    emap_shape = _int_list(spec, "emap_shape")
    if emap_shape:
        # FaceFusion reads the inswapper emap as the model's last initializer, unused by nodes.
        graph.constant("emap", graph.random(emap_shape, scale=1 / np.sqrt(emap_shape[0])))
    graph_proto = helper.make_graph(
        graph.nodes,
        f"{spec.model_id}_standin",
        [_value_info(tensor) for tensor in inputs],
        [_value_info(tensor) for tensor in outputs],
        graph.initializers,
    )
    return save_standin_model(
        graph_proto,
        path,
        spec.model_id,
        "generated test double with the real model's tensor names and shapes; NOT the real "
        "model, its outputs are meaningless",
        metadata=metadata,
    )


def save_standin_model(
    graph: onnx.GraphProto,
    path: Path,
    imitates: str,
    description: str,
    producer: str = STANDIN_PRODUCER,
    metadata: bool = False,
) -> Path:
    """Write `graph` as a checked ONNX file marked as a stand-in for `imitates` in its producer,
    doc string and metadata, so it can never pass for the real model."""
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", STANDIN_OPSET)],
        producer_name=producer,
        doc_string=f"stand-in for {imitates}: {description}",
    )
    model.ir_version = STANDIN_IR_VERSION
    helper.set_model_props(model, {"stand_in": "true", "imitates": imitates})
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    if metadata:
        # What preparation stores beside a prepared file (a swapper's emap), for tests that
        # open the file directly rather than through a model store.
        write_metadata(extract_metadata(model), metadata_path(path))
    return path


def is_standin(model: onnx.ModelProto) -> bool:
    return model.producer_name == STANDIN_PRODUCER


def write_facefusion_hash(model: Path, crc32: str | None = None) -> Path:
    """FaceFusion's `NAME.hash` beside `NAME.onnx`: the file's CRC32 as 8 hex digits (or the
    `crc32` given, to publish a wrong one)."""
    value = crc32 or f"{zlib.crc32(model.read_bytes()):08x}"
    hash_file = model.with_suffix(".hash")
    hash_file.write_text(value, encoding="ascii")
    return hash_file


@dataclass
class _GraphBuilder:
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(20260))

    def node(self, op_type: str, inputs: Sequence[str], **attributes: object) -> str:
        output = f"{op_type.lower()}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], **attributes))
        return output

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def weight(self, shape: Sequence[int], fan_in: int) -> str:
        name = f"weight_{len(self.initializers)}"
        return self.constant(name, self.random(shape, scale=1 / np.sqrt(max(fan_in, 1))))

    def random(self, shape: Sequence[int], scale: float) -> np.ndarray:
        return (self.rng.standard_normal(list(shape)) * scale).astype(np.float32)


class _InputFeatures:
    """The first image input as NCHW float (`image`), the other inputs as one [batch, n] row
    (`conditioning`, None if there are none) and, on demand, both as one row (`summary`)."""

    def __init__(self, graph: _GraphBuilder, inputs: Sequence[TensorSpec]) -> None:
        self._graph = graph
        self.image: str | None = None
        self.image_spec: TensorSpec | None = None
        vectors: list[tuple[str, int]] = []
        for tensor in inputs:
            name = graph.node("Cast", [tensor.name], to=TensorProto.FLOAT)
            if _is_image(tensor) and self.image is None:
                if tensor.layout == "NHWC":
                    name = graph.node("Transpose", [name], perm=[0, 3, 1, 2])
                self.image, self.image_spec = name, tensor
            else:
                vectors.append((_as_rows(graph, name, tensor), _row_length(tensor)))
        self.conditioning = _concat_rows(graph, vectors)
        self._summary: tuple[str, int] | None = None

    @property
    def summary(self) -> tuple[str, int]:
        """The image's channel means followed by the conditioning row."""
        if self._summary is None:
            rows = [] if self.conditioning is None else [self.conditioning]
            if self.image is not None and self.image_spec is not None:
                pooled = self._graph.node("GlobalAveragePool", [self.image])
                rows.insert(0, (self._graph.node("Flatten", [pooled]), _channels(self.image_spec)))
            combined = _concat_rows(self._graph, rows)
            assert combined is not None, "a model has at least one input"
            self._summary = combined
        return self._summary


def _image_output(graph: _GraphBuilder, features: _InputFeatures, output: TensorSpec) -> None:
    """Pool to the output's resolution, then a 3x3 convolution, plus the conditioning rows."""
    assert features.image is not None and features.image_spec is not None
    source = features.image_spec
    source_channels = _channels(source)
    channels = _channels(output)
    current = features.image
    factor = _downscale_factor(source, output)
    if factor > 1:
        current = graph.node(
            "AveragePool", [current], kernel_shape=[factor] * 2, strides=[factor] * 2
        )
    kernel = graph.weight([channels, source_channels, 3, 3], fan_in=9 * source_channels)
    current = graph.node("Conv", [current, kernel], pads=[1, 1, 1, 1])
    conditioning = features.conditioning
    if conditioning is not None:
        rows, length = conditioning
        shift = graph.node("MatMul", [rows, graph.weight([length, channels], fan_in=length)])
        axes = graph.constant(f"axes_{len(graph.initializers)}", np.array([2, 3], np.int64))
        current = graph.node("Add", [current, graph.node("Unsqueeze", [shift, axes])])
    if output.layout == "NHWC":
        current = graph.node("Transpose", [current], perm=[0, 2, 3, 1])
    _finish(graph, current, output)


def _anchor_output(
    graph: _GraphBuilder, features: _InputFeatures, output: TensorSpec, stride: int, spec: ModelSpec
) -> None:
    """SCRFD-style rows: one per anchor of a stride's grid, so their count follows the input."""
    assert features.image is not None and features.image_spec is not None
    anchors = spec.parameters["anchors_per_location"]
    width = int(output.shape[1])
    source_channels = _channels(features.image_spec)
    pooled = graph.node(
        "AveragePool", [features.image], kernel_shape=[stride] * 2, strides=[stride] * 2
    )
    kernel = graph.weight([anchors * width, source_channels, 1, 1], fan_in=source_channels)
    grid = graph.node("Conv", [pooled, kernel])
    cells = graph.node("Transpose", [grid], perm=[0, 2, 3, 1])
    shape = graph.constant(f"shape_{len(graph.initializers)}", np.array([-1, width], np.int64))
    _finish(graph, graph.node("Reshape", [cells, shape]), output)


def _dense_output(graph: _GraphBuilder, features: _InputFeatures, output: TensorSpec) -> None:
    rows, length = features.summary
    size = int(np.prod([int(dim) for dim in output.shape[1:]]))
    dense = graph.node("MatMul", [rows, graph.weight([length, size], fan_in=length)])
    target = np.array([-1, *[int(dim) for dim in output.shape[1:]]], np.int64)
    shape = graph.constant(f"shape_{len(graph.initializers)}", target)
    _finish(graph, graph.node("Reshape", [dense, shape]), output)


def _average_pool(graph: _GraphBuilder, value: str, factor: int) -> str:
    return graph.node("AveragePool", [value], kernel_shape=[factor] * 2, strides=[factor] * 2)


def _finish(graph: _GraphBuilder, value: str, output: TensorSpec) -> None:
    graph.nodes.append(
        helper.make_node("Cast", [value], [output.name], to=_ONNX_TYPES[output.dtype])
    )


def _as_rows(graph: _GraphBuilder, name: str, tensor: TensorSpec) -> str:
    if len(tensor.shape) == 2:
        return name
    return graph.node("Flatten", [name])


def _concat_rows(graph: _GraphBuilder, rows: Sequence[tuple[str, int]]) -> tuple[str, int] | None:
    if not rows:
        return None
    if len(rows) == 1:
        return rows[0]
    return graph.node("Concat", [name for name, _ in rows], axis=1), sum(n for _, n in rows)


def _strides(spec: ModelSpec) -> list[int]:
    return _int_list(spec, "strides")


def _int_list(spec: ModelSpec, name: str) -> list[int]:
    value = spec.parameters.get(name, ())
    return [int(item) for item in value] if isinstance(value, tuple) else []


def _is_image(tensor: TensorSpec) -> bool:
    return len(tensor.shape) == 4 and tensor.layout in (None, "NCHW", "NHWC")


def _channels(tensor: TensorSpec) -> int:
    return int(tensor.shape[3] if tensor.layout == "NHWC" else tensor.shape[1])


def _spatial(tensor: TensorSpec) -> tuple[int | str, int | str]:
    if tensor.layout == "NHWC":
        return tensor.shape[1], tensor.shape[2]
    return tensor.shape[2], tensor.shape[3]


def _downscale_factor(source: TensorSpec, output: TensorSpec) -> int:
    source_height, _ = _spatial(source)
    output_height, _ = _spatial(output)
    if isinstance(source_height, str) or isinstance(output_height, str):
        return 1
    if source_height % output_height:
        raise ValueError(f"cannot pool {source.name} {source.shape} to {output.shape}")
    return source_height // output_height


def _row_length(tensor: TensorSpec) -> int:
    return int(np.prod([int(dim) for dim in tensor.shape[1:]]))


def _resized_batch(tensor: TensorSpec, batch: int) -> TensorSpec:
    if batch == 1 or len(tensor.shape) < 2 or tensor.shape[0] != 1:
        return tensor
    return replace(tensor, shape=(batch, *tensor.shape[1:]))


def _value_info(tensor: TensorSpec) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(tensor.name, _ONNX_TYPES[tensor.dtype], list(tensor.shape))
