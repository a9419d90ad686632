"""The figures that rank the sources of an A/B, from what the renders measured per frame."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ReviewFigures:
    """One source's render, measured while it was rendered (None: nothing measured).

    identity_*: cosine similarity (SFace) of the swapped faces to the source face, over
    `identity_faces` faces in as many frames; worst is the lowest, at `identity_worst_frame`.
    flicker: mean grey-level change (0-255) of the swapped face region from one frame to the
    next (in the previous frame's face box); flicker_added: the same less the change of the
    target's own pixels there (the footage's motion and light), so what the swap adds; and the
    frame where it adds most.
    frames_missed: frames where a face was found and none swapped, as `missed_ranges`
    (first, last) of consecutive frames.
    """

    identity_faces: int
    identity_mean: float | None
    identity_worst: float | None
    identity_worst_frame: int | None
    flicker_pairs: int
    flicker: float | None
    flicker_added: float | None
    flicker_worst_frame: int | None
    frames_missed: int
    missed_ranges: tuple[tuple[int, int], ...]

    def to_dict(self) -> dict[str, object]:
        figures = asdict(self)
        figures["missed_ranges"] = [list(span) for span in self.missed_ranges]
        return figures


def review_figures(
    identity: Mapping[int, Sequence[float]],
    flicker: Mapping[int, tuple[float, float]],
    missed: Iterable[int],
) -> ReviewFigures:
    """`identity`: frame -> similarities measured there; `flicker`: frame -> (change of the
    swapped region, change of the target's pixels) since the previous frame; `missed`: frames
    with faces and none swapped."""
    measured = [
        (value, frame)
        for frame, values in sorted(identity.items())
        for value in values
        if math.isfinite(value)
    ]
    identity_mean = identity_worst = None
    worst_identity_frame = None
    if measured:
        identity_mean = math.fsum(value for value, _ in measured) / len(measured)
        identity_worst, worst_identity_frame = min(measured)
    changes = sorted(flicker.items())
    flicker_mean = flicker_added = None
    worst_flicker_frame = None
    if changes:
        flicker_mean = math.fsum(swapped for _, (swapped, _) in changes) / len(changes)
        added = [(swapped - original, frame) for frame, (swapped, original) in changes]
        flicker_added = math.fsum(value for value, _ in added) / len(added)
        worst_flicker_frame = max(added)[1]
    missed_frames = sorted(set(missed))
    return ReviewFigures(
        identity_faces=len(measured),
        identity_mean=identity_mean,
        identity_worst=identity_worst,
        identity_worst_frame=worst_identity_frame,
        flicker_pairs=len(changes),
        flicker=flicker_mean,
        flicker_added=flicker_added,
        flicker_worst_frame=worst_flicker_frame,
        frames_missed=len(missed_frames),
        missed_ranges=tuple(frame_ranges(missed_frames)),
    )


def frame_ranges(frames: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted distinct frames as (first, last) spans of consecutive frames."""
    spans: list[tuple[int, int]] = []
    for frame in sorted(set(frames)):
        if spans and frame == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], frame)
        else:
            spans.append((frame, frame))
    return spans
