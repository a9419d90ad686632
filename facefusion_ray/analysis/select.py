"""Choosing faces: which source face defines the identity, which target faces get swapped."""

from collections.abc import Sequence

from facefusion_ray.analysis.face import Face


def face_area(face: Face) -> float:
    x1, y1, x2, y2 = (float(value) for value in face.bbox)
    return max(0.0, x2 - x1) * max(0.0, y2 - y1)


def largest_face(faces: Sequence[Face]) -> Face | None:
    return max(faces, key=face_area, default=None)
