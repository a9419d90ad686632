"""Stand-ins at FaceFusion's published model costs, in FaceFusion's folder layout.

FaceFusion publishes inswapper_128 at 174 G-MACs a call in a 683 MB file, and
arcface_w600k_r50 at 6.3 G-MACs a call. The stand-ins here have the real models' tensors
(names, shapes) and those costs: a strided "stem" convolution down to a grid, a stack of 3x3
convolutions on that grid, and a head back to the output. For the swapper, 18 convolutions of
1024 channels on a 32x32 grid are both its cost and its weight (9 x 1024 x 1024 parameters
each, 1024 multiply-adds per parameter), so the file size and the cost come out together.

They are marked as stand-ins (producer, doc string, metadata), written only into a temporary
folder of the benchmark or the GPU check, and never shipped, cached or reported as the models
they imitate. Their outputs are meaningless: the target plus a small term.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from benchmarks.neural_store import write_facefusion_hash
from tests.standin_models import save_standin_model

PRODUCER = "facefusion-ray benchmark stand-in at published cost"
EMBEDDING_SIZE = 512
EMAP_SIZE = 512
# FaceFusion's published figures, which the stand-ins are built to match.
INSWAPPER_PUBLISHED_GMACS = 174.0
INSWAPPER_PUBLISHED_MB = 683
ARCFACE_PUBLISHED_GMACS = 6.3


@dataclass(frozen=True)
class ConvStack:
    """`size` x `size` RGB in; a `stem` x `stem` stride-`stem` convolution to `channels`, then
    `layers` 3x3 convolutions `channels` -> `channels` on the (size / stem)^2 grid."""

    size: int
    stem: int
    channels: int
    layers: int

    @property
    def grid(self) -> int:
        return self.size // self.stem

    def macs(self, head_outputs: int) -> int:
        """Multiply-adds of the stem, the stack and a 1x1 head with `head_outputs` channels."""
        cells = self.grid * self.grid
        stem = cells * self.channels * 3 * self.stem * self.stem
        stack = self.layers * cells * 9 * self.channels * self.channels
        return stem + stack + cells * self.channels * head_outputs


# 18 x 9.66 G-MACs and 18 x 37.7 MB of weights: inswapper_128's 174 G-MACs in 683 MB.
SWAPPER_STACK = ConvStack(size=128, stem=4, channels=1024, layers=18)
# 13 x 0.48 G-MACs on a 28x28 grid: arcface_w600k_r50's 6.3 G-MACs.
RECOGNIZER_STACK = ConvStack(size=112, stem=4, channels=260, layers=13)


@dataclass(frozen=True)
class PublishedCostModels:
    folder: Path  # FaceFusion's .assets/models layout: NAME.onnx and NAME.hash
    swapper_gmacs: float
    swapper_bytes: int
    recognizer_gmacs: float
    recognizer_bytes: int


def build_facefusion_folder(folder: Path, fp16: bool = False) -> PublishedCostModels:
    """inswapper_128.onnx and arcface_w600k_r50.onnx stand-ins with FaceFusion's .hash files;
    with `fp16`, inswapper_128_fp16.onnx too (what a GPU render with FP16 models asks for)."""
    models = folder / ".assets" / "models"
    swapper = build_swapper(models / "inswapper_128.onnx")
    recognizer = build_recognizer(models / "arcface_w600k_r50.onnx")
    written = [swapper, recognizer]
    if fp16:
        written.append(build_fp16_swapper(swapper, models / "inswapper_128_fp16.onnx"))
    for model in written:
        write_facefusion_hash(model)
    return PublishedCostModels(
        folder=models,
        swapper_gmacs=round(_swapper_macs() / 1e9, 2),
        swapper_bytes=swapper.stat().st_size,
        recognizer_gmacs=round(RECOGNIZER_STACK.macs(EMBEDDING_SIZE) / 1e9, 2),
        recognizer_bytes=recognizer.stat().st_size,
    )


def build_in_subprocess(folder: Path, fp16: bool = False) -> PublishedCostModels:
    """`build_facefusion_folder` in a child process, so that the caller never holds the 683 MB
    model: a process forked from a big parent reports the parent's size as its peak memory
    (getrusage) until exec, and the benchmarks measure peak memory."""
    command = [sys.executable, "-m", "benchmarks.published_costs", str(folder)]
    printed = subprocess.run(
        [*command, *(["--fp16"] if fp16 else [])], capture_output=True, text=True, check=True
    ).stdout
    fields = json.loads(printed.strip().splitlines()[-1])
    return PublishedCostModels(**{**fields, "folder": Path(fields["folder"])})


def _swapper_macs() -> int:
    # The head's 1x1 convolution gives 3 x 4 x 4 values a cell, rearranged to 128x128 RGB.
    return SWAPPER_STACK.macs(3 * SWAPPER_STACK.stem**2) + EMBEDDING_SIZE * SWAPPER_STACK.channels


class _Graph:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def weight(self, name: str, shape: tuple[int, ...]) -> str:
        fan_in = int(np.prod(shape[1:]))
        scale = np.float32(np.sqrt(2.0 / fan_in))
        values = self.rng.standard_normal(shape, dtype=np.float32) * scale
        return self.constant(name, values)

    def conv(self, current: str, name: str, shape: tuple[int, ...], **attributes: object) -> str:
        weight = self.weight(f"{name}_weight", shape)
        self.nodes.append(helper.make_node("Conv", [current, weight], [name], **attributes))
        return name

    def relu(self, current: str) -> str:
        self.nodes.append(helper.make_node("Relu", [current], [f"{current}_relu"]))
        return f"{current}_relu"

    def stack(self, current: str, stack: ConvStack, prefix: str) -> str:
        current = self.conv(
            current,
            f"{prefix}_stem",
            (stack.channels, 3, stack.stem, stack.stem),
            strides=[stack.stem] * 2,
        )
        return self.relu(current)

    def layers(self, current: str, stack: ConvStack, prefix: str) -> str:
        for index in range(stack.layers):
            shape = (stack.channels, stack.channels, 3, 3)
            current = self.relu(self.conv(current, f"{prefix}_{index}", shape, pads=[1] * 4))
        return current


def build_swapper(path: Path, seed: int = 174) -> Path:
    """inswapper_128's tensors (target 1x3x128x128 and source 1x512 in, output 1x3x128x128)
    and its 512x512 emap as the last initializer; output = target + 0.02 * tanh(stack)."""
    stack = SWAPPER_STACK
    graph = _Graph(seed)
    current = graph.stack("target", stack, "swapper")
    projection = graph.weight("source_projection", (EMBEDDING_SIZE, stack.channels))
    graph.initializers.append(numpy_helper.from_array(np.array([2, 3], np.int64), "hw_axes"))
    graph.nodes += [
        helper.make_node("MatMul", ["source", projection], ["source_row"]),
        helper.make_node("Unsqueeze", ["source_row", "hw_axes"], ["source_shift"]),
        helper.make_node("Add", [current, "source_shift"], ["conditioned"]),
    ]
    current = graph.layers("conditioned", stack, "swapper")
    head = graph.conv(current, "head", (3 * stack.stem**2, stack.channels, 1, 1))
    strength = graph.constant("residual_strength", np.array(0.02))
    graph.nodes += [
        helper.make_node("DepthToSpace", [head], ["image"], blocksize=stack.stem, mode="CRD"),
        helper.make_node("Tanh", ["image"], ["residual"]),
        helper.make_node("Mul", ["residual", strength], ["scaled_residual"]),
        helper.make_node("Add", ["target", "scaled_residual"], ["output"]),
    ]
    emap = graph.rng.standard_normal((EMAP_SIZE, EMAP_SIZE)) / np.sqrt(EMAP_SIZE)
    graph.constant("emap", emap)  # last, unused by any node, as in the published file
    image = [1, 3, stack.size, stack.size]
    proto = helper.make_graph(
        graph.nodes,
        "inswapper_128_published_cost_standin",
        [
            helper.make_tensor_value_info("target", TensorProto.FLOAT, image),
            helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, EMBEDDING_SIZE]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, image)],
        graph.initializers,
    )
    return _save(proto, path, "inswapper_128", _swapper_macs())


def build_fp16_swapper(fp32: Path, path: Path) -> Path:
    """The swapper stand-in with FP16 weights (emap included) and FP32 inputs and outputs, as
    FaceFusion publishes inswapper_128_fp16."""
    from facefusion_ray.zoo.graph_rewrites import convert_to_float16

    model = onnx.load(str(fp32))
    convert_to_float16(model)
    return _save(model.graph, path, "inswapper_128_fp16", _swapper_macs())


def build_recognizer(path: Path, seed: int = 63) -> Path:
    """arcface_w600k_r50's tensors (input 1x3x112x112, output 1x512)."""
    stack = RECOGNIZER_STACK
    graph = _Graph(seed)
    current = graph.layers(graph.stack("input", stack, "recognizer"), stack, "recognizer")
    head = graph.conv(current, "head", (EMBEDDING_SIZE, stack.channels, 1, 1))
    graph.nodes += [
        helper.make_node("GlobalAveragePool", [head], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["output"]),
    ]
    proto = helper.make_graph(
        graph.nodes,
        "arcface_w600k_r50_published_cost_standin",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, stack.size, stack.size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, EMBEDDING_SIZE])],
        graph.initializers,
    )
    return _save(proto, path, "arcface_w600k_r50", stack.macs(EMBEDDING_SIZE))


def _save(graph: onnx.GraphProto, path: Path, imitates: str, macs: int) -> Path:
    description = (
        f"benchmark proxy at the published cost ({macs / 1e9:.1f} G-MACs a call) with the real "
        "model's tensors; NOT the real model, its outputs are meaningless"
    )
    return save_standin_model(graph, path, imitates, description, producer=PRODUCER)


if __name__ == "__main__":
    built = build_facefusion_folder(Path(sys.argv[1]), fp16="--fp16" in sys.argv[2:])
    print(json.dumps({**asdict(built), "folder": str(built.folder)}))
