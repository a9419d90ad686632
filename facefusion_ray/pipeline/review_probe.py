"""What the A/B review needs of each rendered frame, taken while the frame is rendered.

The actor has every frame in hand before and after the swap, so the review costs no second
decode of the output: the swapped faces up close at a few moments, the identity of the swapped
faces at many frames, how steady the swapped region is from one frame to the next, and the
frames where a face was found but none was swapped. Everything kept is small plain data.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

from facefusion_ray.analysis.face import Face

# Face crops for the face sheet: square, at least 160 px a face (CROP_SIZE / CROP_MARGIN).
CROP_SIZE = 256
CROP_MARGIN = 1.5
# Whole-frame thumbnails for the contact sheet.
THUMBNAIL_HEIGHT = 360
JPEG_QUALITY = 92
# Steadiness compares two neighbouring frames in the same window, the previous frame's face
# box, scaled to grey crops of this side and measured inside an ellipse that holds the inner
# face (eyes, nose, mouth, cheeks) rather than the background. A window that follows the box
# and not the landmarks' rotation costs a slice and a small resize a face (no warp, no fit).
STEADY_SIZE = 64
# A face is the same person as one of the previous frame when their centres are closer than
# this share of the face size.
TRACK_DISTANCE = 0.5


@dataclass(frozen=True)
class ReviewPlan:
    """How much of each render an A/B review looks at: `sheet_frames` moments for the face
    sheet, and identity at `identity_frames` frames or `identity_share` of them if more. One
    SFace call a frame (about 11 ms on a CPU core): 48 frames cost what measuring the six
    faces of eight sampled frames did, and a swap costs more than that for every frame."""

    sheet_frames: int = 8
    identity_frames: int = 48
    identity_share: float = 0.04

    def identity_count(self, frame_count: int) -> int:
        wanted = max(self.identity_frames, round(frame_count * self.identity_share))
        return min(frame_count, wanted)


class FaceDetector(Protocol):
    def detect(self, frame_bgr: np.ndarray) -> list[Face]: ...


class FaceEmbedder(Protocol):
    def embed(
        self, frame_bgr: np.ndarray, landmarks_5: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class ReviewFrames:
    """Which frames of one render the review looks at (sorted frame indices).

    sheet: face crops and a thumbnail are kept. identity: one swapped face is compared with
    `source_embedding` (unit length; None: identity is not measured); the faces of a frame
    take turns, left to right, so every person is measured over the video at one face a frame.
    """

    sheet: tuple[int, ...]
    identity: tuple[int, ...]
    source_embedding: np.ndarray | None = None


@dataclass(frozen=True)
class FaceShot:
    """A swapped face at a sheet moment: its centre in the frame (orders people left to
    right), the longest side of its box in frame pixels, and JPEG crops of the target's face
    and of the swapped face, both CROP_SIZE square."""

    centre: tuple[float, float]
    face_size: int
    original: bytes
    swapped: bytes


@dataclass
class ChunkReview:
    """What the review took from one chunk. flicker: frame -> (swapped, original), the mean
    grey-level change of the swapped region since the previous frame and the same in the
    target's own pixels, averaged over the faces found in both frames."""

    shots: dict[int, list[FaceShot]] = field(default_factory=dict)
    thumbnails: dict[int, bytes] = field(default_factory=dict)
    identity: dict[int, list[float]] = field(default_factory=dict)
    flicker: dict[int, tuple[float, float]] = field(default_factory=dict)
    missed: list[int] = field(default_factory=list)


@dataclass
class _Track:
    """A swapped face of the previous frame: where it was, its window (x1, y1, x2, y2) and
    its crops there (target pixels and swapped pixels)."""

    centre: np.ndarray
    size: float
    window: tuple[int, int, int, int]
    original: np.ndarray
    swapped: np.ndarray


@dataclass
class _Before:
    """A face of the current frame before the swap."""

    window: tuple[int, int, int, int]
    original: np.ndarray
    track: _Track | None = None
    original_in_track: np.ndarray | None = None
    shot: bytes | None = None


class ReviewProbe:
    """Watches the frames of one chunk in order: `before_swap` then `after_swap` per frame."""

    def __init__(self, frames: ReviewFrames, embedder: FaceEmbedder | None) -> None:
        self._frames = frames
        self._sheet = frozenset(frames.sheet)
        self._embedder = embedder if frames.source_embedding is not None else None
        self._tracks: list[_Track] = []
        self._before: dict[int, _Before] = {}
        self.result = ChunkReview()

    def before_swap(self, index: int, frame: np.ndarray, faces: Sequence[Face]) -> None:
        self._before = {}
        for face in faces:
            window = steady_window(face.bbox, frame.shape)
            before = _Before(window, steady_crop(frame, window))
            before.track = self._matching_track(face)
            if before.track is not None:
                before.original_in_track = steady_crop(frame, before.track.window)
            if index in self._sheet:
                before.shot = encode_jpeg(face_crop(frame, face.bbox))
            self._before[id(face)] = before

    def after_swap(
        self, index: int, frame: np.ndarray, faces_detected: int, swapped: Sequence[Face]
    ) -> None:
        if faces_detected > 0 and not swapped:
            self.result.missed.append(index)
        self._measure_flicker(index, frame, swapped)
        if index in self._sheet:
            self._take_shots(index, frame, swapped)
        rank = _position(self._frames.identity, index)
        if rank is not None and swapped and self._embedder is not None:
            ordered = sorted(swapped, key=lambda face: float(face.bbox[0] + face.bbox[2]))
            face = ordered[rank % len(ordered)]
            assert self._frames.source_embedding is not None
            normed = self._embedder.embed(frame, face.landmarks_5)[1]
            self.result.identity[index] = [cosine(normed, self._frames.source_embedding)]
        self._before = {}

    def _matching_track(self, face: Face) -> _Track | None:
        centre, size = box_centre_and_size(face.bbox)
        best: _Track | None = None
        best_distance = TRACK_DISTANCE * size
        for track in self._tracks:
            distance = float(np.linalg.norm(track.centre - centre))
            if distance < best_distance:
                best, best_distance = track, distance
        return best

    def _measure_flicker(self, index: int, frame: np.ndarray, swapped: Sequence[Face]) -> None:
        tracks: list[_Track] = []
        swapped_changes: list[float] = []
        original_changes: list[float] = []
        for face in swapped:
            before = self._before.get(id(face))
            if before is None:
                continue
            if before.track is not None and before.original_in_track is not None:
                now = steady_crop(frame, before.track.window)
                swapped_changes.append(steady_change(now, before.track.swapped))
                original_changes.append(
                    steady_change(before.original_in_track, before.track.original)
                )
            centre, size = box_centre_and_size(face.bbox)
            own = steady_crop(frame, before.window)
            tracks.append(_Track(centre, size, before.window, before.original, own))
        if swapped_changes:
            self.result.flicker[index] = (
                float(np.mean(swapped_changes)),
                float(np.mean(original_changes)),
            )
        self._tracks = tracks

    def _take_shots(self, index: int, frame: np.ndarray, swapped: Sequence[Face]) -> None:
        shots = []
        for face in swapped:
            before = self._before.get(id(face))
            if before is None or before.shot is None:
                continue
            centre, size = box_centre_and_size(face.bbox)
            swapped_crop = encode_jpeg(face_crop(frame, face.bbox))
            shots.append(
                FaceShot(
                    (float(centre[0]), float(centre[1])), round(size), before.shot, swapped_crop
                )
            )
        self.result.shots[index] = sorted(shots, key=lambda shot: shot.centre[0])
        self.result.thumbnails[index] = encode_jpeg(thumbnail(frame))


def merge_reviews(reviews: Sequence[ChunkReview]) -> ChunkReview:
    """The chunks' reviews of one render as one (chunks cover distinct frames)."""
    merged = ChunkReview()
    for review in reviews:
        merged.shots.update(review.shots)
        merged.thumbnails.update(review.thumbnails)
        merged.identity.update(review.identity)
        merged.flicker.update(review.flicker)
        merged.missed.extend(review.missed)
    merged.missed.sort()
    return merged


def source_embedding(
    images: Sequence[np.ndarray], detector: FaceDetector, embedder: FaceEmbedder
) -> np.ndarray | None:
    """Unit-length mean of the normed embeddings of the largest face of each source image;
    None when no image has a face."""
    embeddings = []
    for image in images:
        faces = detector.detect(image)
        if not faces:
            continue
        largest = max(faces, key=lambda face: float(face.bbox[2] - face.bbox[0]))
        embeddings.append(np.asarray(embedder.embed(image, largest.landmarks_5)[1]).reshape(-1))
    if not embeddings:
        return None
    mean = np.mean(embeddings, axis=0).astype(np.float32)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else None


def _position(ordered: tuple[int, ...], index: int) -> int | None:
    position = bisect.bisect_left(ordered, index)
    if position < len(ordered) and ordered[position] == index:
        return position
    return None


def box_centre_and_size(bbox: np.ndarray) -> tuple[np.ndarray, float]:
    x1, y1, x2, y2 = (float(value) for value in bbox[:4])
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2]), max(x2 - x1, y2 - y1, 1.0)


def steady_window(bbox: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The face box as whole pixels inside the frame (at least 2 px a side)."""
    height, width = shape[:2]
    x1 = min(max(0, int(bbox[0])), width - 2)
    y1 = min(max(0, int(bbox[1])), height - 2)
    x2 = max(min(width, int(np.ceil(bbox[2]))), x1 + 2)
    y2 = max(min(height, int(np.ceil(bbox[3]))), y1 + 2)
    return x1, y1, x2, y2


def steady_crop(frame: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
    x1, y1, x2, y2 = window
    crop = cv2.resize(
        frame[y1:y2, x1:x2], (STEADY_SIZE, STEADY_SIZE), interpolation=cv2.INTER_LINEAR
    )
    return cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)


def _steady_mask() -> np.ndarray:
    mask = np.zeros((STEADY_SIZE, STEADY_SIZE), dtype=np.uint8)
    centre = (STEADY_SIZE // 2, round(STEADY_SIZE * 0.53))
    axes = (round(STEADY_SIZE * 0.38), round(STEADY_SIZE * 0.44))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, -1)
    return mask


_STEADY_MASK = _steady_mask()


def steady_change(now: np.ndarray, before: np.ndarray) -> float:
    """Mean absolute grey-level difference of two steady crops inside the face ellipse."""
    return float(cv2.mean(cv2.absdiff(now, before), mask=_STEADY_MASK)[0])


def face_crop(frame: np.ndarray, bbox: np.ndarray) -> np.ndarray:
    """A CROP_SIZE square around the face box, CROP_MARGIN times its longest side (scaled up
    or down; the frame's edge is repeated where the square leaves the frame)."""
    centre, size = box_centre_and_size(bbox)
    scale = CROP_SIZE / (size * CROP_MARGIN)
    transform = np.array(
        [
            [scale, 0.0, CROP_SIZE / 2 - scale * centre[0]],
            [0.0, scale, CROP_SIZE / 2 - scale * centre[1]],
        ]
    )
    interpolation = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
    return cv2.warpAffine(
        frame, transform, (CROP_SIZE, CROP_SIZE), flags=interpolation,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip


def thumbnail(frame: np.ndarray) -> np.ndarray:
    scale = THUMBNAIL_HEIGHT / frame.shape[0]
    if scale >= 1:
        return frame
    size = (max(1, round(frame.shape[1] * scale)), THUMBNAIL_HEIGHT)
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def encode_jpeg(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("cannot encode a review crop as JPEG")
    return encoded.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("a review crop is not a readable JPEG")
    return image


def cosine(embedding: np.ndarray, unit_source: np.ndarray) -> float:
    face = np.asarray(embedding, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(face))
    if norm == 0.0:
        return 0.0
    return float(np.dot(face / norm, np.asarray(unit_source, dtype=np.float32).reshape(-1)))
