"""How two programs' outputs of the same target are compared in the parity tests.

The criterion (issue 15): of the pixels that either program changed, at least 99.9% agree
within 2 levels in every channel, and the same faces change (the changed pixels form the same
number of separate regions, each overlapping its counterpart).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

TOLERANCE_LEVELS = 2
MIN_AGREEING_SHARE = 0.999
# Changed pixels closer than this many pixels belong to one face region.
REGION_GAP = 15


@dataclass(frozen=True)
class Parity:
    changed: int  # pixels either program changed
    agreeing: int  # of those, pixels within the tolerance in every channel
    worst: int  # largest difference between the two outputs, in levels
    regions_ours: int
    regions_theirs: int
    regions_shared: int  # regions of ours that overlap one of theirs

    @property
    def share(self) -> float:
        return self.agreeing / self.changed if self.changed else 1.0

    @property
    def same_faces(self) -> bool:
        return self.regions_ours == self.regions_theirs == self.regions_shared

    @property
    def holds(self) -> bool:
        return self.share >= MIN_AGREEING_SHARE and self.same_faces

    def __str__(self) -> str:
        return (
            f"{self.agreeing}/{self.changed} changed pixels agree within {TOLERANCE_LEVELS} "
            f"({self.share:.5f}), worst {self.worst}; regions ours {self.regions_ours}, "
            f"FaceFusion {self.regions_theirs}, shared {self.regions_shared}"
        )


def compare(target: np.ndarray, ours: np.ndarray, theirs: np.ndarray) -> Parity:
    if not target.shape == ours.shape == theirs.shape:
        raise ValueError(f"shapes differ: {target.shape}, {ours.shape}, {theirs.shape}")
    ours_changed = _changed(target, ours)
    theirs_changed = _changed(target, theirs)
    either = ours_changed | theirs_changed
    difference = np.abs(ours.astype(np.int16) - theirs.astype(np.int16)).max(axis=2)
    ours_regions = _regions(ours_changed)
    theirs_regions = _regions(theirs_changed)
    shared = sum(
        1
        for label in range(1, ours_regions.max() + 1)
        if (theirs_regions[ours_regions == label] > 0).any()
    )
    return Parity(
        changed=int(either.sum()),
        agreeing=int((either & (difference <= TOLERANCE_LEVELS)).sum()),
        worst=int(difference.max()),
        regions_ours=int(ours_regions.max()),
        regions_theirs=int(theirs_regions.max()),
        regions_shared=shared,
    )


def _changed(target: np.ndarray, output: np.ndarray) -> np.ndarray:
    # More than the tolerance: rounding in either program's paste-back is not a change.
    difference = np.abs(output.astype(np.int16) - target.astype(np.int16)).max(axis=2)
    return difference > TOLERANCE_LEVELS


def _regions(changed: np.ndarray) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (REGION_GAP, REGION_GAP))
    closed = cv2.dilate(changed.astype(np.uint8), kernel)
    _, labels = cv2.connectedComponents(closed)
    return labels
