"""Geometry shared by FaceFusion-compatible detectors: fitting a frame into the network input,
anchor grids, distance decoding, NMS, and detection on a rotated frame.

The rules follow FaceFusion 3.8.1 (facefusion/face_detector.py, face_helper.py, vision.py):
a frame larger than the detector size is shrunk to fit (aspect kept, sizes truncated to int,
bilinear) and placed at the top-left of a zero canvas; results are scaled back per axis by
frame size / shrunk size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from facefusion_ray.analysis.face import Face
from facefusion_ray.inference.sessions import ModelSession

# FaceFusion's get_nms_threshold: more detector angles mean more duplicates to merge.
_NMS_THRESHOLD_BY_ANGLE_COUNT = {1: 0.4, 2: 0.3, 3: 0.2, 4: 0.1}
SUPPORTED_ANGLES = (0, 90, 180, 270)


@dataclass(frozen=True)
class Detections:
    """Candidates before NMS: boxes (N, 4) x1, y1, x2, y2; scores (N,); landmarks (N, 5, 2)."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    @staticmethod
    def empty() -> Detections:
        return Detections(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros(0, np.float32),
            landmarks=np.zeros((0, 5, 2), np.float32),
        )

    @staticmethod
    def concatenate(parts: Sequence[Detections]) -> Detections:
        if not parts:
            return Detections.empty()
        return Detections(
            boxes=np.concatenate([part.boxes for part in parts]).astype(np.float32),
            scores=np.concatenate([part.scores for part in parts]).astype(np.float32),
            landmarks=np.concatenate([part.landmarks for part in parts]).astype(np.float32),
        )


@dataclass(frozen=True)
class DetectorCanvas:
    """The network's input pixels (height, width, 3) float32, and the frame pixels per canvas
    pixel along x and y that map decoded coordinates back onto the frame."""

    pixels: np.ndarray
    frame_per_canvas: np.ndarray

    def to_frame(self, detections: Detections) -> Detections:
        ratio_x, ratio_y = self.frame_per_canvas
        return Detections(
            boxes=detections.boxes * np.array([ratio_x, ratio_y, ratio_x, ratio_y], np.float32),
            scores=detections.scores,
            landmarks=detections.landmarks * np.array([ratio_x, ratio_y], np.float32),
        )


def checked_input_name(session: ModelSession, size: tuple[int, int]) -> str:
    """The detector's image input; ValueError when the model fixes another (width, height)."""
    name = session.input_names[0]
    _, _, height, width = session.input_shape(name)
    if isinstance(width, int) and isinstance(height, int) and (width, height) != size:
        raise ValueError(f"model {session.name} takes {width}x{height}, not {size}")
    return name


def shrink_to_fit(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Shrink `frame` to fit (width, height) keeping its aspect; never enlarge it."""
    height, width = frame.shape[:2]
    limit_width, limit_height = size
    if height <= limit_height and width <= limit_width:
        return frame
    scale = min(limit_height / height, limit_width / width)
    return cv2.resize(frame, (int(width * scale), int(height * scale)))


def fit_to_detector(frame: np.ndarray, size: tuple[int, int]) -> DetectorCanvas:
    """The frame shrunk into a (width, height) canvas of zeros, placed at its top-left."""
    shrunk = shrink_to_fit(frame, size)
    width, height = size
    pixels = np.zeros((height, width, 3), np.float32)
    pixels[: shrunk.shape[0], : shrunk.shape[1]] = shrunk
    ratio = np.array(
        [frame.shape[1] / shrunk.shape[1], frame.shape[0] / shrunk.shape[0]], np.float32
    )
    return DetectorCanvas(pixels=pixels, frame_per_canvas=ratio)


def to_nchw_batch(pixels: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(pixels.transpose(2, 0, 1)[None], dtype=np.float32)


def anchor_centres(height: int, width: int, stride: int, anchors: int = 2) -> np.ndarray:
    """(rows * columns * anchors, 2) anchor centres (x, y) in input pixels for an input of
    `height` x `width` pixels: cells in row-major order, each repeated `anchors` times, each at
    its cell's top-left corner (column * stride, row * stride), as FaceFusion places them.

    FaceFusion builds the grid with x counting up to the grid height; for its square sizes
    this is the same grid, and for other sizes this follows the network's row-major output."""
    rows, columns = height // stride, width // stride
    row_index, column_index = np.divmod(np.arange(rows * columns), columns)
    cells = np.stack([column_index, row_index], axis=1).astype(np.float32) * stride
    return np.repeat(cells, anchors, axis=0)


def distance_to_box(centres: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Boxes (N, 4) from distances (left, top, right, bottom) to each centre."""
    return np.concatenate([centres - distances[:, 0:2], centres + distances[:, 2:4]], axis=1)


def distance_to_landmarks(centres: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Landmarks (N, K, 2) from per-point offsets (N, 2K) ordered x0, y0, x1, y1, ..."""
    offsets = distances.reshape(len(distances), -1, 2)
    return centres[:, None, :] + offsets


def nms_threshold_for_angles(angle_count: int) -> float:
    """FaceFusion's IoU threshold for one detector model run at `angle_count` angles."""
    return _NMS_THRESHOLD_BY_ANGLE_COUNT.get(angle_count, 0.4)


def non_max_suppression(
    boxes: np.ndarray, scores: np.ndarray, score_threshold: float, nms_threshold: float
) -> np.ndarray:
    """Indices kept by OpenCV's NMSBoxes (as FaceFusion calls it), best score first."""
    if len(scores) == 0:
        return np.zeros(0, np.int64)
    rectangles = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxes(
        rectangles.astype(np.float64).tolist(),
        scores.astype(np.float64).tolist(),
        score_threshold,
        nms_threshold,
    )
    return np.asarray(keep, dtype=np.int64).reshape(-1)


def rotation_matrix_and_size(
    angle: float, size: tuple[int, int]
) -> tuple[np.ndarray, tuple[int, int]]:
    """2x3 matrix turning a (width, height) image by `angle` degrees (counter-clockwise, as
    OpenCV counts) about its centre, shifted so the whole turned image fits the returned size."""
    width, height = size
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1)
    turned = np.abs(matrix[:, :2]) @ np.array([width, height], np.float64)
    matrix[:, 2] += (turned - np.array([width, height])) * 0.5
    return matrix, (int(turned[0]), int(turned[1]))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    flat = np.asarray(points, np.float64).reshape(-1, 2)
    return (flat @ matrix[:, :2].T + matrix[:, 2]).reshape(np.shape(points))


def transform_box(box: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The axis-aligned box around the transformed corners of `box`."""
    x1, y1, x2, y2 = box
    corners = transform_points(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]), matrix)
    return np.concatenate([corners.min(axis=0), corners.max(axis=0)])


def detect_rotated(
    frame: np.ndarray, angle: float, detect_upright: Callable[[np.ndarray], Detections]
) -> Detections:
    """Detect on the frame turned by `angle`, with results mapped back onto `frame`."""
    if angle % 360 == 0:
        return detect_upright(frame)
    matrix, size = rotation_matrix_and_size(angle, (frame.shape[1], frame.shape[0]))
    turned = cv2.warpAffine(frame, matrix, size)
    inverse = cv2.invertAffineTransform(matrix)
    found = detect_upright(turned)
    if len(found.scores) == 0:
        return found
    return Detections(
        boxes=np.stack([transform_box(box, inverse) for box in found.boxes]).astype(np.float32),
        scores=found.scores,
        landmarks=transform_points(found.landmarks, inverse).astype(np.float32),
    )


def detect_at_angles(
    frame: np.ndarray,
    angles: Sequence[int],
    detect_upright: Callable[[np.ndarray], Detections],
    score_threshold: float,
    nms_threshold: float | None,
) -> list[Face]:
    """Faces found at every angle, merged by NMS (FaceFusion's threshold for the angle count
    when `nms_threshold` is None), best score first, in `frame` coordinates."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 BGR frame, got shape {frame.shape}")
    if not angles:
        raise ValueError("at least one detector angle is needed")
    for angle in angles:
        if angle not in SUPPORTED_ANGLES:
            raise ValueError(f"detector angle {angle} is not one of {SUPPORTED_ANGLES}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        return []
    found = Detections.concatenate(
        [detect_rotated(frame, angle, detect_upright) for angle in angles]
    )
    threshold = (
        nms_threshold if nms_threshold is not None else nms_threshold_for_angles(len(angles))
    )
    # Decoded corners can come out swapped (negative distances); FaceFusion sorts them.
    boxes = np.concatenate(
        [
            np.minimum(found.boxes[:, :2], found.boxes[:, 2:]),
            np.maximum(found.boxes[:, :2], found.boxes[:, 2:]),
        ],
        axis=1,
    )
    keep = non_max_suppression(boxes, found.scores, score_threshold, threshold)
    return [
        Face(
            bbox=boxes[index].astype(np.float32),
            score=float(found.scores[index]),
            landmarks_5=found.landmarks[index].astype(np.float32),
        )
        for index in keep
    ]


def faces_as_detections(faces: Sequence[Face]) -> Detections:
    """Candidates from already decoded faces, so any detector can go through the angle merge."""
    if not faces:
        return Detections.empty()
    return Detections(
        boxes=np.stack([face.bbox for face in faces]).astype(np.float32),
        scores=np.array([face.score for face in faces], dtype=np.float32),
        landmarks=np.stack([face.landmarks_5 for face in faces]).astype(np.float32),
    )
