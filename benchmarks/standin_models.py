"""Generated ONNX stand-ins for the benchmark's neural scenario: a swapper with inswapper_128's
contract whose compute is that of a neural swapper (~10 GFLOPs a face), and a cheap recognizer
with arcface_w600k_r50's contract for the source embedding.

Their outputs are meaningless: they exist to make the engine pay a neural swapper's cost per
face. They are marked as stand-ins (producer, doc string, metadata), written only into the
benchmark's temporary folder and never shipped, cached or reported as the models they imitate.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.standin_models import save_standin_model

PRODUCER = "facefusion-ray benchmark stand-in"
SWAPPER_SIZE = 128
EMBEDDING_SIZE = 512
RECOGNIZER_SIZE = 112
# inswapper_128 carries its 512x512 identity projection as the graph's last initializer.
EMAP_SIZE = 512


@dataclass(frozen=True)
class SwapperShape:
    """A 3x3 convolution stack at the swapper's resolution: RGB -> `channels`, then `layers`
    convolutions `channels` -> `channels`, then back to RGB."""

    channels: int = 64
    layers: int = 8

    def convolutions(self) -> list[tuple[int, int]]:
        """(input channels, output channels) of every 3x3 convolution, in order."""
        hidden = [(self.channels, self.channels)] * self.layers
        return [(3, self.channels), *hidden, (self.channels, 3)]

    def flops_per_call(self) -> int:
        """Multiply-adds counted as 2 FLOPs, for the convolutions and the source projection;
        biases, activations and the residual add are left out (under 0.1%)."""
        pixels = SWAPPER_SIZE * SWAPPER_SIZE
        convolutions = sum(2 * pixels * 9 * cin * cout for cin, cout in self.convolutions())
        return convolutions + 2 * EMBEDDING_SIZE * self.channels


DEFAULT_SHAPE = SwapperShape()


def build_swapper(path: Path, shape: SwapperShape = DEFAULT_SHAPE, seed: int = 10) -> Path:
    """inswapper_128's tensors (target 1x3x128x128 and source 1x512 in, output 1x3x128x128),
    output = target + 0.02 * tanh(convolution stack conditioned on the source)."""
    rng = np.random.default_rng(seed)
    initializers: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def constant(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def he_normal(shape_: tuple[int, ...], fan_in: int) -> np.ndarray:
        return rng.standard_normal(shape_) * np.sqrt(2.0 / fan_in)

    current = "target"
    for index, (cin, cout) in enumerate(shape.convolutions()):
        weight = constant(f"conv_{index}_weight", he_normal((cout, cin, 3, 3), 9 * cin))
        bias = constant(f"conv_{index}_bias", np.zeros(cout))
        convolved = f"conv_{index}"
        nodes.append(helper.make_node("Conv", [current, weight, bias], [convolved], pads=[1] * 4))
        current = convolved
        if index == 0:
            projection = constant(
                "source_projection", he_normal((EMBEDDING_SIZE, cout), EMBEDDING_SIZE)
            )
            initializers.append(numpy_helper.from_array(np.array([2, 3], np.int64), "hw_axes"))
            nodes += [
                helper.make_node("MatMul", ["source", projection], ["source_row"]),
                helper.make_node("Unsqueeze", ["source_row", "hw_axes"], ["source_shift"]),
                helper.make_node("Add", [current, "source_shift"], ["conditioned"]),
            ]
            current = "conditioned"
        if cout != 3:
            nodes.append(helper.make_node("Relu", [current], [f"relu_{index}"]))
            current = f"relu_{index}"
    strength = constant("residual_strength", np.array(0.02))
    nodes += [
        helper.make_node("Tanh", [current], ["residual"]),
        helper.make_node("Mul", ["residual", strength], ["scaled_residual"]),
        helper.make_node("Add", ["target", "scaled_residual"], ["output"]),
    ]
    constant("emap", rng.standard_normal((EMAP_SIZE, EMAP_SIZE)) / np.sqrt(EMAP_SIZE))
    image = [1, 3, SWAPPER_SIZE, SWAPPER_SIZE]
    graph = helper.make_graph(
        nodes,
        "benchmark_swapper_standin",
        [
            helper.make_tensor_value_info("target", TensorProto.FLOAT, image),
            helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, EMBEDDING_SIZE]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, image)],
        initializers,
    )
    gflops = shape.flops_per_call() / 1e9
    return _save(graph, path, "inswapper_128", f"{gflops:.2f} GFLOPs a call")


def build_recognizer(path: Path, seed: int = 11) -> Path:
    """arcface_w600k_r50's tensors (input 1x3x112x112, output 1x512): a 4x4 grid of mean
    colours through one dense layer, so different faces get different embeddings."""
    rng = np.random.default_rng(seed)
    cell = RECOGNIZER_SIZE // 4
    features = 3 * 4 * 4
    weight = rng.standard_normal((features, EMBEDDING_SIZE)) / np.sqrt(features)
    pool = helper.make_node(
        "AveragePool", ["input"], ["grid"], kernel_shape=[cell] * 2, strides=[cell] * 2
    )
    nodes = [
        pool,
        helper.make_node("Flatten", ["grid"], ["row"]),
        helper.make_node("MatMul", ["row", "dense"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "benchmark_recognizer_standin",
        [
            helper.make_tensor_value_info(
                "input", TensorProto.FLOAT, [1, 3, RECOGNIZER_SIZE, RECOGNIZER_SIZE]
            )
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, EMBEDDING_SIZE])],
        [numpy_helper.from_array(weight.astype(np.float32), "dense")],
    )
    return _save(graph, path, "arcface_w600k_r50", "a few kFLOPs a call")


def _save(graph: onnx.GraphProto, path: Path, imitates: str, cost: str) -> Path:
    description = f"benchmark proxy with its tensors ({cost}); its outputs are meaningless"
    return save_standin_model(graph, path, imitates, description, producer=PRODUCER)
