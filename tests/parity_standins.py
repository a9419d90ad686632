"""Stand-in models for the FaceFusion parity tests, written with each model's exact contract.

Their outputs depend on the positions and values of their inputs, so that a wrong crop,
template, normalisation, channel order, mask or paste-back in either program shows up as a
pixel difference: the swapper reverses the colour channels of its crop and adds a ramp across
the crop plus a shift from the source embedding; the recognizer pools a 4x4 grid of colours
through one dense layer. The models that only gate or classify (the NSFW trio, fairface) give
fixed answers: safe content, one gender/age/race. Every file is marked as a stand-in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from benchmarks.standin_models import build_recognizer
from tests.standin_models import save_standin_model

PRODUCER = "facefusion-ray parity stand-in"
EMBEDDING_SIZE = 512


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op_type: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        name = output or f"{op_type.lower()}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, inputs, [name], **attrs))
        return name


def _image(name: str, size: int, channels: int = 3) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, channels, size, size])


def _save(graph: _Graph, inputs, outputs, path: Path, imitates: str, what: str) -> Path:
    proto = helper.make_graph(
        graph.nodes, f"{imitates}_parity", inputs, outputs, graph.initializers
    )
    return save_standin_model(proto, path, imitates, what, producer=PRODUCER)


def build_swapper(
    path: Path,
    imitates: str,
    size: int,
    emap: bool = False,
    mask_output: bool = False,
    seed: int = 15,
) -> Path:
    """A swapper with `target` (1x3xSxS) and `source` (1x512) in, `output` (1x3xSxS):
    0.6 * target with channels reversed + 0.25 * a diagonal ramp + 0.15 * sigmoid(source row),
    so channel order, crop position and the source embedding all change the pixels. With
    `emap`, an inswapper-style 512x512 emap is the graph's last initializer; `mask_output`
    adds hyperswap's second output (1x1xSxS), which FaceFusion does not read."""
    rng = np.random.default_rng(seed)
    graph = _Graph()
    mixed = _flipped_with_ramp(graph, "target", size)
    weight = (rng.standard_normal((EMBEDDING_SIZE, 3)) * 4 / np.sqrt(EMBEDDING_SIZE)).astype(
        np.float32
    )
    shift = graph.node("Sigmoid", [graph.node("MatMul", ["source", graph.constant("w", weight)])])
    shift = graph.node("Unsqueeze", [shift, graph.constant("axes", np.array([2, 3], np.int64))])
    shifted = graph.node("Mul", [shift, graph.constant("b", np.array(0.15, np.float32))])
    graph.node("Add", [mixed, shifted], "output")
    outputs = [_image("output", size)]
    if mask_output:
        graph.node("ReduceMean", ["output"], "mask", axes=[1], keepdims=1)
        outputs.append(_image("mask", size, 1))
    if emap:
        emap_values = rng.standard_normal((EMBEDDING_SIZE, EMBEDDING_SIZE)) / np.sqrt(512)
        graph.constant("emap", emap_values.astype(np.float32))
    source = helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, EMBEDDING_SIZE])
    return _save(
        graph,
        [source, _image("target", size)] if mask_output else [_image("target", size), source],
        outputs,
        path,
        imitates,
        "channels reversed plus a ramp plus a source shift; NOT the real model",
    )


def build_enhancer(path: Path, imitates: str = "gfpgan_1.4", size: int = 512) -> Path:
    """An enhancer, `input` (1x3xSxS, in [-1, 1]) to `output`: channels reversed plus a ramp."""
    graph = _Graph()
    graph.node("Identity", [_flipped_with_ramp(graph, "input", size)], "output")
    return _save(
        graph,
        [_image("input", size)],
        [_image("output", size)],
        path,
        imitates,
        "channels reversed plus a ramp; NOT the real model",
    )


def _flipped_with_ramp(graph: _Graph, image: str, size: int) -> str:
    """0.6 * the image with its channels reversed + 0.25 * a per-channel diagonal ramp."""
    reverse = graph.constant("reverse", np.array([2, 1, 0], np.int64))
    flipped = graph.node("Gather", [image, reverse], axis=1)
    ramp_values = np.add.outer(np.arange(size), np.arange(size)).astype(np.float32)
    ramp = ramp_values / ramp_values.max() * np.array([1.0, 0.5, 0.25], np.float32)[:, None, None]
    return graph.node(
        "Add",
        [
            graph.node("Mul", [flipped, graph.constant("a", np.array(0.6, np.float32))]),
            graph.constant("ramp", (0.25 * ramp[None]).astype(np.float32)),
        ],
    )


def build_arcface(path: Path) -> Path:
    return build_recognizer(path, seed=11)


def build_constant(
    path: Path,
    imitates: str,
    input_shape: list[int],
    outputs: list[tuple[str, list[int], float | int]],
) -> Path:
    """Outputs of fixed value (int64 where the value is an int) that still read the input,
    for models whose answers only gate or label (NSFW: safe; fairface: one class)."""
    graph = _Graph()
    mean = graph.node("ReduceMean", ["input"], keepdims=0)
    zero = graph.node("Mul", [mean, graph.constant("zero", np.array(0.0, np.float32))])
    infos = []
    for name, shape, value in outputs:
        filled = np.full(shape, value, np.float32)
        result = graph.node("Add", [zero, graph.constant(f"{name}_value", filled)])
        if isinstance(value, int):
            graph.node("Cast", [result], name, to=TensorProto.INT64)
            infos.append(helper.make_tensor_value_info(name, TensorProto.INT64, shape))
        else:
            graph.node("Identity", [result], name)
            infos.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, input_shape)]
    return _save(graph, inputs, infos, path, imitates, "fixed answers; NOT the real model")


def build_fan_68_5(path: Path) -> Path:
    """68 points as fixed blends of the 5 (each row of the blend sums to 1), so the estimate
    follows the face and keeps its angle."""
    rng = np.random.default_rng(17)
    blend = rng.dirichlet(np.ones(5), size=68).astype(np.float32)
    graph = _Graph()
    graph.node("MatMul", [graph.constant("blend", blend), "input"], "output")
    return _save(
        graph,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 5, 2])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 68, 2])],
        path,
        "fan_68_5",
        "fixed blends of the five points; NOT the real model",
    )


# Where a face's 68 points lie on 2dfan4's 64-cell grid (the face box spans about 49 cells
# around the centre): jaw ends, eye rings, nose tip and mouth corners at plausible places, so
# the five points derived from them make a sane alignment.
_LAYOUT_68 = {
    0: (10.0, 28.0),
    16: (54.0, 28.0),
    30: (32.0, 36.0),
    48: (25.0, 45.0),
    54: (39.0, 45.0),
    **{index: (22.0 + 2 * (index - 36) % 6, 26.0 + (index - 36) // 3) for index in range(36, 42)},
    **{index: (40.0 + 2 * (index - 42) % 6, 26.0 + (index - 42) // 3) for index in range(42, 48)},
}


def build_2dfan4(path: Path, heat: float) -> Path:
    """2dfan4's contract (input 1x3x256x256; landmarks 1x68x3 on a 64 grid, heatmaps
    1x68x64x64): a face layout moved by up to ~2 cells by the crop's mean colour, heatmaps of
    peak `heat` (FaceFusion's score is mean peak / 0.9: 0.2 stays below the 0.5 threshold)."""
    rng = np.random.default_rng(19)
    layout = np.stack([rng.uniform(16, 48, 68), rng.uniform(14, 50, 68)], axis=1)
    for index, point in _LAYOUT_68.items():
        layout[index] = point
    graph = _Graph()
    means = graph.node("Flatten", [graph.node("GlobalAveragePool", ["input"])])
    move = (rng.standard_normal((3, 68 * 2)) * 2).astype(np.float32)
    offsets = graph.node(
        "Reshape",
        [
            graph.node("MatMul", [means, graph.constant("move", move)]),
            graph.constant("points_shape", np.array([1, 68, 2], np.int64)),
        ],
    )
    points = graph.node("Add", [offsets, graph.constant("layout", layout[None].astype(np.float32))])
    confidence = graph.node(
        "Add",
        [
            graph.node(
                "Slice",
                [
                    points,
                    graph.constant("start", np.array([0], np.int64)),
                    graph.constant("end", np.array([1], np.int64)),
                    graph.constant("axis", np.array([2], np.int64)),
                ],
            ),
            graph.constant("one", np.array(1.0, np.float32)),
        ],
    )
    graph.node("Concat", [points, confidence], "landmarks", axis=2)
    heatmap = np.full((1, 68, 64, 64), heat / 2, np.float32)
    heatmap[:, :, 32, 32] = heat
    zero = graph.node(
        "Mul",
        [
            graph.node("ReduceMean", ["input"], keepdims=0),
            graph.constant("zero", np.array(0.0, np.float32)),
        ],
    )
    graph.node("Add", [zero, graph.constant("heat", heatmap)], "heatmaps")
    return _save(
        graph,
        [_image("input", 256)],
        [
            helper.make_tensor_value_info("landmarks", TensorProto.FLOAT, [1, 68, 3]),
            helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [1, 68, 64, 64]),
        ],
        path,
        "2dfan4",
        f"fixed layout moved by the crop's colour, heat {heat}; NOT the real model",
    )


def content_analyser_standins() -> dict[str, Callable[[Path], Path]]:
    """FaceFusion's three NSFW models, answering 'safe', and fairface."""
    return {
        "nsfw_1": lambda path: build_constant(
            path, "nsfw_1", [1, 3, 640, 640], [("output", [1, 8, 16], 0.0)]
        ),
        "nsfw_2": lambda path: build_constant(
            path, "nsfw_2", [1, 3, 384, 384], [("output", [1, 2], 0.0)]
        ),
        "nsfw_3": lambda path: build_constant(
            path, "nsfw_3", [1, 3, 448, 448], [("output", [1, 4], 0.0)]
        ),
        "fairface": lambda path: build_constant(
            path,
            "fairface",
            [1, 3, 224, 224],
            [("race_id", [1], 0), ("gender_id", [1], 0), ("age_id", [1], 3)],
        ),
    }


def build_face_parser(path: Path, imitates: str = "bisenet_resnet_34") -> Path:
    """A face parser's contract (1x3x512x512 in, 19 class maps out): a 1x1 convolution. FaceFusion's
    pre_check demands it even when no region mask is asked for."""
    rng = np.random.default_rng(23)
    graph = _Graph()
    kernel = graph.constant("kernel", rng.standard_normal((19, 3, 1, 1)).astype(np.float32))
    graph.node("Conv", ["input", kernel], "output")
    return _save(
        graph,
        [_image("input", 512)],
        [_image("output", 512, 19)],
        path,
        imitates,
        "a 1x1 convolution; NOT the real model",
    )


def build_occluder(path: Path, imitates: str = "xseg_1", size: int = 256) -> Path:
    """xseg's contract (input 1xSxSx3 in [0, 1], NHWC; output 1xSxSx1): 'visible' rises from
    the crop's top to its bottom and with the pixel's brightness, so the occlusion edge crosses
    every face at a place set by both position and colour."""
    graph = _Graph()
    brightness = graph.node("ReduceMean", ["input"], axes=[3], keepdims=1)
    rows = np.linspace(-1.0, 1.5, size, dtype=np.float32)[None, :, None, None]
    rising = graph.node(
        "Add",
        [
            graph.constant("rows", np.broadcast_to(rows, (1, size, size, 1)).copy()),
            graph.node("Mul", [brightness, graph.constant("k", np.array(1.5, np.float32))]),
        ],
    )
    graph.node("Sub", [rising, graph.constant("offset", np.array(0.5, np.float32))], "output")
    info = helper.make_tensor_value_info
    return _save(
        graph,
        [info("input", TensorProto.FLOAT, [1, size, size, 3])],
        [info("output", TensorProto.FLOAT, [1, size, size, 1])],
        path,
        imitates,
        "a vertical ramp plus brightness; NOT the real model",
    )


def build_fp16_swapper(path: Path, imitates: str = "inswapper_128_fp16") -> Path:
    """inswapper_128's stand-in with FP16 weights (emap included) and FP32 inputs and outputs,
    as FaceFusion publishes inswapper_128_fp16."""
    from facefusion_ray.zoo.graph_rewrites import convert_to_float16

    fp32 = build_swapper(path.with_name(path.stem + ".fp32.onnx"), imitates, 128, emap=True)
    model = onnx.load(str(fp32))
    fp32.unlink()
    convert_to_float16(model)
    return save_standin_model(
        model.graph, path, imitates, "FP16 weights of the inswapper stand-in", producer=PRODUCER
    )
