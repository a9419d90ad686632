"""68-point landmarks as FaceFusion 3.8.1 finds them (facefusion/face_landmarker.py,
face_helper.py, face_creator.py): 2DFAN4 on a box-scaled crop, fan_68_5 estimating 68 points
from the detector's 5, and the rule that lets a confident 2DFAN4 result replace the 5 points.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from facefusion_ray.analysis.detector_geometry import rotation_matrix_and_size, transform_points
from facefusion_ray.analysis.face import Face
from facefusion_ray.analysis.templates import estimate_similarity
from facefusion_ray.inference.sessions import ModelSession

CROP_SIZE = 256
# The face box's longer side becomes this many pixels of the crop.
CROP_BOX_SIZE = 195
HEATMAP_SIZE = 64
# The mean heatmap peak maps linearly from [0, 0.9] onto a [0, 1] score.
SCORE_PEAK_RANGE = (0.0, 0.9)
DEFAULT_SCORE_THRESHOLD = 0.5
CONTRAST_BELOW_LUMINANCE = 30
CONTRAST_CLIP_LIMIT = 2.0
FAN_68_5_TEMPLATE = "ffhq_512"
# 68-point indices: eyes span 36..41 and 42..47, nose tip 30, mouth corners 48 and 54.
_FIRST_EYE = slice(36, 42)
_SECOND_EYE = slice(42, 48)
_NOSE_TIP = 30
_MOUTH_CORNERS = (48, 54)
_JAW_ENDS = (0, 16)


@dataclass(frozen=True)
class FaceLandmarks:
    """landmarks_68 (68, 2) in frame pixels and the landmarker's score in [0, 1] (0 when the
    68 points were only estimated from 5); landmarks_5 is what the face should use: derived
    from the 68 points when the score beats the threshold, else the detector's own 5 points.
    landmarks_68_from_5 is fan_68_5's estimate (None without that model); angle is the
    rotation (0, 90, 180, 270) the 2DFAN4 crop was turned by."""

    landmarks_68: np.ndarray
    score: float
    landmarks_5: np.ndarray
    landmarks_68_from_5: np.ndarray | None
    angle: int


class Fan68Landmarker:
    def __init__(
        self,
        session_2dfan4: ModelSession,
        session_fan_68_5: ModelSession | None = None,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    ) -> None:
        self._session_2dfan4 = session_2dfan4
        self._session_fan_68_5 = session_fan_68_5
        self.score_threshold = score_threshold

    def landmark(self, frame_bgr: np.ndarray, face: Face) -> FaceLandmarks:
        """FaceFusion's sequence: estimate 68 from 5 (if fan_68_5 is given) to find the face's
        angle, run 2DFAN4 at that angle, keep the 2DFAN4 points for landmarks_5 only if their
        score is strictly above the threshold. A threshold of 0 skips 2DFAN4, as FaceFusion."""
        estimate = None
        angle = 0
        if self._session_fan_68_5 is not None:
            estimate = self.estimate_68_from_5(face.landmarks_5)
            angle = estimate_face_angle(estimate)
        if estimate is not None and self.score_threshold <= 0:
            landmarks_68, score = estimate, 0.0
        else:
            landmarks_68, score = self.detect_68(frame_bgr, face.bbox, angle)
        landmarks_5 = np.asarray(face.landmarks_5, np.float32)
        if score > self.score_threshold:
            landmarks_5 = landmarks_5_from_68(landmarks_68)
        return FaceLandmarks(
            landmarks_68=landmarks_68.astype(np.float32),
            score=score,
            landmarks_5=landmarks_5.astype(np.float32),
            landmarks_68_from_5=None if estimate is None else estimate.astype(np.float32),
            angle=angle,
        )

    def refine(self, frame_bgr: np.ndarray, face: Face) -> Face:
        """A copy of `face` whose landmarks_5 follow FaceFusion's replacement rule."""
        return dataclasses.replace(face, landmarks_5=self.landmark(frame_bgr, face).landmarks_5)

    def detect_68(
        self, frame_bgr: np.ndarray, bbox: np.ndarray, angle: int = 0
    ) -> tuple[np.ndarray, float]:
        """2DFAN4's 68 points (frame pixels) and score for the face in `bbox`."""
        crop, crop_matrix, turn_matrix = crop_for_2dfan4(frame_bgr, bbox, angle)
        blob = np.ascontiguousarray(crop.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
        name = self._session_2dfan4.input_names[0]
        points, heatmaps = self._session_2dfan4.run({name: blob})[:2]
        return decode_2dfan4(points, heatmaps, crop_matrix, turn_matrix)

    def estimate_68_from_5(self, landmarks_5: np.ndarray) -> np.ndarray:
        """fan_68_5's 68 points (frame pixels) from 5, given in the ffhq_512 unit square."""
        if self._session_fan_68_5 is None:
            raise ValueError("no fan_68_5 session was given")
        matrix = estimate_similarity(landmarks_5, FAN_68_5_TEMPLATE, 1)
        normalised = transform_points(np.asarray(landmarks_5, np.float64), matrix)
        name = self._session_fan_68_5.input_names[0]
        output = self._session_fan_68_5.run({name: normalised[None].astype(np.float32)})[0]
        return transform_points(output.reshape(-1, 2), cv2.invertAffineTransform(matrix))


def crop_for_2dfan4(
    frame_bgr: np.ndarray, bbox: np.ndarray, angle: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 256x256 crop 2DFAN4 reads, with the frame->crop scale/translation matrix and the
    matrix that then turns the crop by `angle`."""
    box = np.asarray(bbox, np.float64)
    scale = CROP_BOX_SIZE / max(float((box[2:] - box[:2]).max()), 1.0)
    translation = (CROP_SIZE - (box[2:] + box[:2]) * scale) * 0.5
    crop_matrix = np.array([[scale, 0, translation[0]], [0, scale, translation[1]]])
    crop = cv2.warpAffine(frame_bgr, crop_matrix, (CROP_SIZE, CROP_SIZE))
    turn_matrix, turned_size = rotation_matrix_and_size(angle, (CROP_SIZE, CROP_SIZE))
    crop = cv2.warpAffine(crop, turn_matrix, turned_size)
    return boost_dark_contrast(crop), crop_matrix, turn_matrix


def boost_dark_contrast(crop_bgr: np.ndarray) -> np.ndarray:
    """CLAHE on the lightness of crops darker than the luminance limit.

    FaceFusion converts with the RGB<->Lab codes although the crop is BGR, and always makes the
    round trip; both are kept so the model sees the same pixels as under FaceFusion."""
    lab = cv2.cvtColor(crop_bgr, cv2.COLOR_RGB2Lab)
    if float(np.mean(lab[:, :, 0])) < CONTRAST_BELOW_LUMINANCE:
        lab[:, :, 0] = cv2.createCLAHE(clipLimit=CONTRAST_CLIP_LIMIT).apply(lab[:, :, 0])
    return cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)


def decode_2dfan4(
    points: np.ndarray, heatmaps: np.ndarray, crop_matrix: np.ndarray, turn_matrix: np.ndarray
) -> tuple[np.ndarray, float]:
    """Frame points from the model's points output (heatmap cells, x, y first) and a score
    from the mean of the heatmaps' peaks."""
    in_crop = np.asarray(points, np.float64).reshape(-1, 68, 3)[0, :, :2]
    in_crop = in_crop / HEATMAP_SIZE * CROP_SIZE
    unturned = transform_points(in_crop, cv2.invertAffineTransform(turn_matrix))
    in_frame = transform_points(unturned, cv2.invertAffineTransform(crop_matrix))
    peaks = np.asarray(heatmaps, np.float64).reshape(-1, 68, HEATMAP_SIZE * HEATMAP_SIZE)
    mean_peak = float(peaks.max(axis=2).mean())
    score = float(np.interp(mean_peak, SCORE_PEAK_RANGE, (0.0, 1.0)))
    return in_frame, score


def landmarks_5_from_68(landmarks_68: np.ndarray) -> np.ndarray:
    """The five points FaceFusion derives from 68: both eye centres, nose tip, mouth corners."""
    points = np.asarray(landmarks_68, np.float64)
    return np.stack(
        [
            points[_FIRST_EYE].mean(axis=0),
            points[_SECOND_EYE].mean(axis=0),
            points[_NOSE_TIP],
            points[_MOUTH_CORNERS[0]],
            points[_MOUTH_CORNERS[1]],
        ]
    ).astype(np.float32)


def estimate_face_angle(landmarks_68: np.ndarray) -> int:
    """The multiple of 90 degrees nearest the direction from jaw point 0 to jaw point 16."""
    start, end = np.asarray(landmarks_68, np.float64)[list(_JAW_ENDS)]
    theta = float(np.degrees(np.arctan2(end[1] - start[1], end[0] - start[0]))) % 360
    candidates = np.array([0, 90, 180, 270, 360])
    return int(candidates[np.argmin(np.abs(candidates - theta))] % 360)
