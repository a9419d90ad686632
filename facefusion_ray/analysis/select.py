"""Choosing faces: which source face defines the identity, which target faces get swapped.

Modes, orders and the reference distance rule match FaceFusion's face selector: faces are
sorted by an order, `one` takes the face at a position, `reference` keeps faces whose
embedding distance to a reference face, (1 - cosine) / 2, is below a threshold.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from facefusion_ray.analysis.face import Face
from facefusion_ray.option_scopes import Scope, check_declared_values, declared

# FaceFusion's three modes, and ours: every source to its own person of the video.
FaceSelectorMode = Literal["many", "one", "reference", "identity-map"]
FaceSelectorOrder = Literal[
    "left-right",
    "right-left",
    "top-bottom",
    "bottom-top",
    "small-large",
    "large-small",
    "best-worst",
    "worst-best",
]
FACE_SELECTOR_MODES: tuple[str, ...] = get_args(FaceSelectorMode)
FACE_SELECTOR_ORDERS: tuple[str, ...] = get_args(FaceSelectorOrder)
DEFAULT_REFERENCE_FACE_DISTANCE = 0.3


def face_area(face: Face) -> float:
    x1, y1, x2, y2 = (float(value) for value in face.bbox)
    return max(0.0, x2 - x1) * max(0.0, y2 - y1)


def largest_face(faces: Sequence[Face]) -> Face | None:
    return max(faces, key=face_area, default=None)


_ORDER_KEYS: dict[str, tuple[Callable[[Face], float], bool]] = {
    "left-right": (lambda face: float(face.bbox[0]), False),
    "right-left": (lambda face: float(face.bbox[0]), True),
    "top-bottom": (lambda face: float(face.bbox[1]), False),
    "bottom-top": (lambda face: float(face.bbox[1]), True),
    "small-large": (face_area, False),
    "large-small": (face_area, True),
    "best-worst": (lambda face: face.score, True),
    "worst-best": (lambda face: face.score, False),
}


def sort_faces(faces: Sequence[Face], order: str) -> list[Face]:
    key, descending = _ORDER_KEYS[order]
    return sorted(faces, key=key, reverse=descending)


def face_at_position(faces: Sequence[Face], position: int) -> Face | None:
    """The face at `position`, or the last one when there are fewer faces."""
    if not faces:
        return None
    return faces[min(max(position, 0), len(faces) - 1)]


def face_distance(normed_a: np.ndarray, normed_b: np.ndarray) -> float:
    """Cosine distance mapped from [0, 2] onto [0, 1], as FaceFusion compares faces."""
    return float((1.0 - float(np.dot(normed_a, normed_b))) / 2.0)


@dataclass(frozen=True)
class FaceSelection:
    """Which analysed faces get swapped: chosen after the analysis, so only pixels change."""

    mode: str = declared(
        "many", Scope.PIXELS, choices=FACE_SELECTOR_MODES, label="face selector mode"
    )
    order: str = declared(
        "large-small", Scope.PIXELS, choices=FACE_SELECTOR_ORDERS, label="face selector order"
    )
    reference_face_position: int = declared(0, Scope.PIXELS, bounds=(0, None))
    reference_face_distance: float = declared(
        DEFAULT_REFERENCE_FACE_DISTANCE, Scope.PIXELS, bounds=(0, 1)
    )

    def __post_init__(self) -> None:
        check_declared_values(self)

    @property
    def needs_embeddings(self) -> bool:
        return self.mode in ("reference", "identity-map")


def select_faces(
    faces: Sequence[Face],
    selection: FaceSelection,
    reference_embedding: np.ndarray | None = None,
) -> list[Face]:
    """The target faces to swap, in the selection's order.

    In `reference` mode every face needs a normed embedding and `reference_embedding` is the
    reference face's normed embedding.
    """
    ordered = sort_faces(faces, selection.order)
    if selection.mode == "many":
        return ordered
    if selection.mode == "one":
        chosen = face_at_position(ordered, 0)
        return [] if chosen is None else [chosen]
    if selection.mode == "identity-map":
        return ordered  # each face is matched to its person by the identity map
    if reference_embedding is None:
        raise ValueError("reference mode needs the reference face's embedding")
    matches = []
    for face in ordered:
        if face.normed_embedding is None:
            raise ValueError("reference mode needs an embedding for every face")
        distance = face_distance(face.normed_embedding, reference_embedding)
        if distance < selection.reference_face_distance:
            matches.append(face)
    return matches
