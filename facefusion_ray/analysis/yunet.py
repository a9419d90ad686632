"""Face detection with YuNet: letterbox, one session run, anchor-free decoding, NMS.

Decoding follows FaceFusion 3.8.1 (facefusion/face_detector.py): for the cell (row r, col c)
of stride s, score = cls * obj, centre = ((c, r) + bbox[:2]) * s, size = exp(bbox[2:]) * s,
landmark k = ((c, r) + kps[2k:2k+2]) * s. The frame is fitted into the detector size as
FaceFusion's restrict_frame does (only frames larger than the size are shrunk, aspect kept,
sizes truncated, bilinear) and sits at the top left of a zero canvas of the whole detector size
(640x640 by default), as FaceFusion letterboxes it.

`frame_aspect` is an opt-in fast path for models with a free input size: the canvas is padded
only up to the next multiple of the largest stride (640x384 for a 16:9 frame), which costs
less but changes what the network sees near the borders, so faces cut by the frame's edge can
be found or missed differently from FaceFusion. OpenCV's FaceDetectorYN reports
sqrt(cls * obj) as its score: a FaceFusion threshold of 0.5 is OpenCV's 0.71.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from facefusion_ray.analysis.detector_geometry import detect_at_angles, faces_as_detections
from facefusion_ray.analysis.face import Face
from facefusion_ray.inference.sessions import ModelSession

# FaceFusion's defaults: face_detector_score 0.5 (of cls * obj), NMS IoU 0.4 for one angle.
DEFAULT_SCORE_THRESHOLD = 0.5
DEFAULT_NMS_THRESHOLD = 0.4
# OpenCV FaceDetectorYN's default cap on boxes kept by NMS.
DEFAULT_TOP_K = 5000
STRIDES = (8, 16, 32)
# FaceFusion's only --face-detector-size for yunet.
DEFAULT_SIZE = (640, 640)


class YuNetDetector:
    def __init__(
        self,
        session: ModelSession,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        nms_threshold: float = DEFAULT_NMS_THRESHOLD,
        top_k: int = DEFAULT_TOP_K,
        size: tuple[int, int] = DEFAULT_SIZE,
        frame_aspect: bool = False,
    ) -> None:
        self._session = session
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.top_k = top_k
        self._input_name = session.input_names[0]
        _, _, height, width = session.input_shape(self._input_name)
        # A model with symbolic height/width takes any size that is a multiple of the
        # largest stride; one with a fixed size runs at that size whatever is asked.
        self.accepts_any_size = not isinstance(width, int) or not isinstance(height, int)
        self.input_size = size if self.accepts_any_size else (width, height)
        self.frame_aspect = frame_aspect and self.accepts_any_size
        self._cells: dict[tuple[int, int, int], np.ndarray] = {}
        self._canvas: np.ndarray | None = None
        self._canvas_key: tuple[int, int, int, int] | None = None

    def detect(self, frame_bgr: np.ndarray, angles: Sequence[int] = (0,)) -> list[Face]:
        """Faces in a BGR frame, best score first, in the frame's pixel coordinates; other
        `angles` (90/180/270) also detect on the turned frame and merge by FaceFusion's NMS."""
        if tuple(angles) == (0,):
            return self._detect_upright(frame_bgr)
        return detect_at_angles(
            frame_bgr,
            angles,
            lambda turned: faces_as_detections(self._detect_upright(turned)),
            self.score_threshold,
            None,
        )

    def _detect_upright(self, frame_bgr: np.ndarray) -> list[Face]:
        """Faces in a BGR uint8 frame, best score first, in the frame's pixel coordinates."""
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 BGR frame, got shape {frame_bgr.shape}")
        frame_height, frame_width = frame_bgr.shape[:2]
        if frame_height == 0 or frame_width == 0:
            return []
        fitted = fit_into(frame_bgr, self.input_size)
        scale = np.array(
            [frame_width / fitted.shape[1], frame_height / fitted.shape[0]], dtype=np.float32
        )
        network_size = self._network_size(fitted)
        outputs = dict(
            zip(
                self._session.output_names,
                self._session.run({self._input_name: self._blob(fitted, network_size)}),
                strict=True,
            )
        )
        boxes, scores, landmarks = self._decode(outputs, network_size)
        if len(scores) == 0:
            return []
        keep = cv2.dnn.NMSBoxes(
            boxes.tolist(),
            scores.tolist(),
            self.score_threshold,
            self.nms_threshold,
            top_k=self.top_k,
        )
        order = sorted(np.asarray(keep, dtype=np.int64).reshape(-1), key=lambda i: -scores[i])
        return [
            Face(
                bbox=np.concatenate([boxes[i, :2], boxes[i, :2] + boxes[i, 2:]])
                * np.tile(scale, 2),
                score=float(scores[i]),
                landmarks_5=landmarks[i] * scale,
            )
            for i in order
        ]

    def _network_size(self, fitted: np.ndarray) -> tuple[int, int]:
        if not self.frame_aspect:
            return self.input_size
        step = STRIDES[-1]
        height, width = fitted.shape[:2]
        return (-(-width // step) * step, -(-height // step) * step)

    def _cell_grid(self, stride: int, network_size: tuple[int, int]) -> np.ndarray:
        key = (stride, *network_size)
        if key not in self._cells:
            width, height = network_size
            self._cells[key] = _cell_origins(width // stride, height // stride)
        return self._cells[key]

    def _blob(self, fitted: np.ndarray, network_size: tuple[int, int]) -> np.ndarray:
        """The letterboxed input: `fitted` at the top left of a zero canvas. The canvas is kept
        between frames (the session has read it when `run` returns): only the fitted area is
        written, and the rest zeroed again when a frame fits differently."""
        width, height = network_size
        fitted_height, fitted_width = fitted.shape[:2]
        key = (width, height, fitted_width, fitted_height)
        if self._canvas is None or self._canvas_key != key:
            self._canvas = np.zeros((1, 3, height, width), dtype=np.float32)
            self._canvas_key = key
        for channel, plane in enumerate(cv2.split(fitted)):
            self._canvas[0, channel, :fitted_height, :fitted_width] = plane
        return self._canvas

    def _decode(
        self, outputs: dict[str, np.ndarray], network_size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (N, 4) as x, y, w, h, scores (N,), landmarks (N, 5, 2), in network pixels."""
        all_boxes, all_scores, all_landmarks = [], [], []
        for stride in STRIDES:
            scores = (outputs[f"cls_{stride}"] * outputs[f"obj_{stride}"]).reshape(-1)
            selected = np.flatnonzero(scores >= self.score_threshold)
            if selected.size == 0:
                continue
            cells = self._cell_grid(stride, network_size)[selected]
            bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)[selected]
            kps = outputs[f"kps_{stride}"].reshape(-1, 5, 2)[selected]
            centres = (cells + bbox[:, :2]) * stride
            sizes = np.exp(bbox[:, 2:]) * stride
            all_boxes.append(np.hstack([centres - sizes / 2, sizes]))
            all_scores.append(scores[selected])
            all_landmarks.append((kps + cells[:, None, :]) * stride)
        if not all_scores:
            return (
                np.zeros((0, 4), np.float32),
                np.zeros(0, np.float32),
                np.zeros((0, 5, 2), np.float32),
            )
        return (
            np.concatenate(all_boxes).astype(np.float32),
            np.concatenate(all_scores).astype(np.float32),
            np.concatenate(all_landmarks).astype(np.float32),
        )


def fit_into(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Shrink `frame` to fit (width, height) keeping its aspect; never enlarge it."""
    height, width = frame.shape[:2]
    limit_width, limit_height = size
    if width <= limit_width and height <= limit_height:
        return frame
    scale = min(limit_width / width, limit_height / height)
    new_size = (max(1, int(width * scale)), max(1, int(height * scale)))
    return cv2.resize(frame, new_size, interpolation=cv2.INTER_LINEAR)


def _cell_origins(columns: int, rows: int) -> np.ndarray:
    """(rows * columns, 2) array of (col, row) per cell, in the model's row-major order."""
    row_index, column_index = np.divmod(np.arange(rows * columns), columns)
    return np.stack([column_index, row_index], axis=1).astype(np.float32)
