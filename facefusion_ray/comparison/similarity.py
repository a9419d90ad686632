"""How much the swapped faces of a render look like their source, by SFace cosine similarity."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from facefusion_ray.analysis.protocols import FaceEmbedder, FaceFinder
from facefusion_ray.analysis.select import largest_face
from facefusion_ray.comparison.frames import iter_selected_frames
from facefusion_ray.errors import NoFaceError
from facefusion_ray.media.images import read_image


@dataclass(frozen=True)
class SimilarityStats:
    """frames_swapped: frames the render swapped a face in; faces_measured: swapped faces whose
    similarity was measured; mean/minimum: over those faces, None when none was measured."""

    frames_swapped: int
    faces_measured: int
    mean: float | None
    minimum: float | None


def source_embedding_for(
    image_path: str | os.PathLike[str], detector: FaceFinder, recognizer: FaceEmbedder
) -> np.ndarray:
    """Unit-length embedding of the largest face in a source image; NoFaceError if it has none."""
    image = read_image(image_path)
    face = largest_face(detector.detect(image))
    if face is None:
        raise NoFaceError(f"no face found in source image: {image_path}")
    return recognizer.embed(image, face.landmarks_5)[1]


def measure_identity_similarity(
    video: str | os.PathLike[str],
    samples: Mapping[int, Sequence[np.ndarray]],
    source_embedding: np.ndarray,
    recognizer: FaceEmbedder,
) -> dict[int, list[float]]:
    """Cosine similarity to `source_embedding` of each swapped face in the sampled frames.

    `samples` maps a frame index of the rendered `video` to the (5, 2) landmarks of the faces
    swapped in that frame; a swap keeps the target's pose, so the target's landmarks locate
    the swapped face. Only the sampled frames are decoded. The result has every sampled
    frame, with one similarity per face in the order given (empty for a frame without faces).
    MediaError if the video is unreadable or ends before a sampled frame that has faces.
    """
    frames_with_faces = [index for index, faces in samples.items() if len(faces) > 0]
    return similarities_in_frames(
        iter_selected_frames(video, frames_with_faces), samples, source_embedding, recognizer
    )


def similarities_in_frames(
    frames: Iterable[tuple[int, np.ndarray]],
    samples: Mapping[int, Sequence[np.ndarray]],
    source_embedding: np.ndarray,
    recognizer: FaceEmbedder,
) -> dict[int, list[float]]:
    """`measure_identity_similarity` on frames already decoded: (index, frame) pairs that
    cover every sampled frame with faces (others are ignored)."""
    source = _unit_vector(source_embedding)
    similarities: dict[int, list[float]] = {index: [] for index in sorted(samples)}
    for index, frame in frames:
        for landmarks in samples.get(index, ()):
            points = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
            normed = recognizer.embed(frame, points)[1]
            similarities[index].append(_cosine(normed, source))
    return similarities


def similarity_stats(
    per_frame: Mapping[int, Sequence[float]], frames_swapped: int | None = None
) -> SimilarityStats:
    """Summary of `measure_identity_similarity`'s result.

    `frames_swapped` is the render's own count (sampling may measure only some of the frames
    it swapped); by default it is the number of measured frames with at least one face.
    """
    values = [value for faces in per_frame.values() for value in faces]
    if frames_swapped is None:
        frames_swapped = sum(1 for faces in per_frame.values() if faces)
    if not values:
        return SimilarityStats(frames_swapped, 0, None, None)
    mean = math.fsum(values) / len(values)
    return SimilarityStats(frames_swapped, len(values), mean, min(values))


def _cosine(embedding: np.ndarray, unit_source: np.ndarray) -> float:
    face = _unit_vector(embedding)
    if face.shape != unit_source.shape:
        raise ValueError(
            f"the source embedding has {unit_source.size} values but the recognizer gives "
            f"{face.size}: they come from different recognizers"
        )
    return float(np.dot(face, unit_source))


def _unit_vector(vector: np.ndarray) -> np.ndarray:
    flat = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(flat))
    if not math.isfinite(norm) or norm == 0.0:
        raise ValueError("an embedding must have a finite, non-zero length")
    return flat / norm
