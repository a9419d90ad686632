"""Detector stand-ins for the parity tests that decode to known faces.

scrfd_2.5g / retinaface_10g (nine outputs: scores, box distances and landmark offsets per
stride, two anchors per cell) and yoloface_8n (one 1x20xN output of centre, size, score and
five landmarks with confidences) are written with their exact output layouts for one detector
size. Their outputs are fixed: at each known face (given in detector-canvas pixels) a confident
candidate at stride 16, a weaker, larger duplicate at stride 8 that NMS must drop, and a
candidate below the threshold at stride 32; everything else scores 0. So the anchor grid,
strides, distance decoding, ratio back to the frame, threshold and NMS of both programs decide
which faces are swapped and where.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from tests.standin_models import save_standin_model

PRODUCER = "facefusion-ray parity stand-in"
STRIDES = (8, 16, 32)
ANCHORS_PER_CELL = 2
# (stride, score, box scale) of the candidates written for each known face.
CANDIDATES = ((16, 0.86, 1.0), (8, 0.7, 1.12), (32, 0.3, 1.0))


@dataclass(frozen=True)
class KnownFace:
    """A face in detector-canvas pixels: box x1, y1, x2, y2 and five (x, y) landmarks."""

    box: np.ndarray
    landmarks: np.ndarray


def _scaled(face: KnownFace, scale: float) -> tuple[np.ndarray, np.ndarray]:
    centre = (face.box[:2] + face.box[2:]) / 2
    half = (face.box[2:] - face.box[:2]) / 2 * scale
    return np.concatenate([centre - half, centre + half]), face.landmarks


def scrfd_outputs(size: int, faces: Sequence[KnownFace]) -> list[np.ndarray]:
    """Scores (N, 1), distances (N, 4) and offsets (N, 10) per stride, in FaceFusion's order."""
    scores, boxes, points = [], [], []
    for stride in STRIDES:
        cells = size // stride
        count = cells * cells * ANCHORS_PER_CELL
        score = np.zeros((count, 1), np.float32)
        box = np.zeros((count, 4), np.float32)
        kps = np.zeros((count, 10), np.float32)
        for order, face in enumerate(faces):
            for candidate_stride, value, scale in CANDIDATES:
                if candidate_stride != stride:
                    continue
                face_box, landmarks = _scaled(face, scale)
                centre = (face_box[:2] + face_box[2:]) / 2
                column, row = np.clip((centre // stride).astype(int), 0, cells - 1)
                anchor = np.array([column, row], np.float32) * stride
                index = (row * cells + column) * ANCHORS_PER_CELL
                score[index] = value - 0.01 * order
                box[index] = np.concatenate([anchor - face_box[:2], face_box[2:] - anchor]) / stride
                kps[index] = ((landmarks - anchor) / stride).reshape(-1)
        scores.append(score)
        boxes.append(box)
        points.append(kps)
    return [*scores, *boxes, *points]


def yoloface_output(size: int, faces: Sequence[KnownFace]) -> np.ndarray:
    """(1, 20, N): rows cx, cy, w, h, score, then x, y, confidence for each landmark; N counts
    the cells of strides 8, 16 and 32 (8400 at 640)."""
    count = sum((size // stride) ** 2 for stride in STRIDES)
    output = np.zeros((20, count), np.float32)
    offsets = np.cumsum([0] + [(size // stride) ** 2 for stride in STRIDES])
    for order, face in enumerate(faces):
        for candidate_stride, value, scale in CANDIDATES:
            face_box, landmarks = _scaled(face, scale)
            centre = (face_box[:2] + face_box[2:]) / 2
            cells = size // candidate_stride
            column, row = np.clip((centre // candidate_stride).astype(int), 0, cells - 1)
            index = offsets[STRIDES.index(candidate_stride)] + row * cells + column
            column_values = [*centre, *(face_box[2:] - face_box[:2]), value - 0.01 * order]
            for point in landmarks:
                column_values += [*point, 0.9]
            output[:, index] = column_values
    return output[None]


def build_scrfd(path: Path, imitates: str, size: int, faces: Sequence[KnownFace]) -> Path:
    names = [f"{kind}_{stride}" for kind in ("score", "bbox", "kps") for stride in STRIDES]
    return _fixed_outputs(path, imitates, dict(zip(names, scrfd_outputs(size, faces), strict=True)))


def build_yoloface(path: Path, size: int, faces: Sequence[KnownFace]) -> Path:
    return _fixed_outputs(path, "yoloface_8n", {"output": yoloface_output(size, faces)})


def _fixed_outputs(path: Path, imitates: str, outputs: dict[str, np.ndarray]) -> Path:
    """A graph whose named outputs are fixed arrays plus 0 * the input's mean."""
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
    ]
    initializers = [numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    infos = []
    for name, value in outputs.items():
        initializers.append(numpy_helper.from_array(value.astype(np.float32), f"{name}_value"))
        nodes.append(helper.make_node("Add", ["nothing", f"{name}_value"], [name]))
        infos.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    image = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "height", "width"])
    graph = helper.make_graph(nodes, f"{imitates}_parity", [image], infos, initializers)
    return save_standin_model(
        graph, path, imitates, "fixed candidates at known faces; NOT the real model", PRODUCER
    )
