"""The planes path's contract with every processor: it reads and writes only within `reach`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from facefusion_ray.analysis.face import Face


def assert_stays_within_reach(
    reach_of: Callable[[Face, tuple[int, ...]], object],
    apply: Callable[[np.ndarray, Sequence[Face]], Sequence[object]],
    frame: np.ndarray,
    face: Face,
) -> None:
    """`apply` on a frame blanked outside the face's reach writes the same pixels inside it as
    on the whole frame, only there, and names a written box inside the reach."""
    reach = reach_of(face, frame.shape)
    inside = np.s_[reach.y0 : reach.y1, reach.x0 : reach.x1]  # type: ignore[attr-defined]
    whole, partial = frame.copy(), np.zeros_like(frame)
    partial[inside] = frame[inside]
    [written] = apply(whole, [face])
    apply(partial, [face])
    assert reach.x0 <= written.x0 and written.x1 <= reach.x1  # type: ignore[attr-defined]
    assert reach.y0 <= written.y0 and written.y1 <= reach.y1  # type: ignore[attr-defined]
    assert np.array_equal(partial[inside], whole[inside])
    assert not partial[: reach.y0].any() and not partial[reach.y1 :].any()  # type: ignore[attr-defined]
