"""Colour matching between an aligned source crop and the target face it replaces."""

from dataclasses import dataclass

import cv2
import numpy as np

MIN_MASKED_PIXELS = 16
# A near-grey source (an old photo) has almost no chroma spread: scaling it up to the
# target's spread would only amplify noise into coloured fringes, so the gain is capped.
MAX_SPREAD_GAIN = 3.0
MIN_SPREAD_GAIN = 1.0 / MAX_SPREAD_GAIN


def to_lab(image_bgr: np.ndarray) -> np.ndarray:
    scaled = image_bgr.astype(np.float32)
    scaled *= 1.0 / 255.0  # in place: the same float32 products, one array fewer
    return cv2.cvtColor(scaled, cv2.COLOR_BGR2LAB)


def masked_mean_std(lab: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = cv2.meanStdDev(lab, mask=mask)
    return mean.reshape(3), std.reshape(3)


@dataclass(frozen=True)
class ColourReference:
    """A source crop in LAB with its statistics, computed once per source."""

    bgr: np.ndarray
    lab: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    selection: np.ndarray  # uint8 mask of the pixels the statistics are measured on
    enough_pixels: bool  # at least MIN_MASKED_PIXELS selected: colours are matched at all
    # The rows holding the selection (the target is converted to LAB only there), and the rows
    # a paste-back blending with the mask reads the recoloured crop from: where the mask is
    # above 0, and one row around it for bilinear sampling. Whole rows: OpenCV's colour
    # conversions then see every pixel at the same place in their vector loops as in the
    # whole crop (a box of columns changed one value in 1,225 faces by a level).
    measured: slice
    painted: slice

    @classmethod
    def measure(cls, source_bgr: np.ndarray, mask: np.ndarray) -> "ColourReference":
        selection = (mask > 0.5).astype(np.uint8)
        lab = to_lab(source_bgr)
        mean, std = masked_mean_std(lab, selection)
        enough = cv2.countNonZero(selection) >= MIN_MASKED_PIXELS
        measured, painted = _rows_holding(selection > 0, 0), _rows_holding(mask > 0, 1)
        return cls(source_bgr, lab, mean, std, selection, enough, measured, painted)


def _rows_holding(inside: np.ndarray, margin: int) -> slice:
    rows = np.flatnonzero(inside.any(axis=1))
    if rows.size == 0:
        return slice(0, 0)
    return slice(max(int(rows[0]) - margin, 0), min(int(rows[-1]) + 1 + margin, len(inside)))


def transfer_lab_statistics(reference: ColourReference, target_bgr: np.ndarray) -> np.ndarray:
    """The source crop with its LAB mean and spread moved to the target's, as uint8 BGR, in the
    rows a paste-back with the reference's mask reads (`painted`); elsewhere the source crop.

    Statistics are measured on the same masked pixels of both aligned crops.
    """
    if not reference.enough_pixels:
        return reference.bgr
    rows = reference.measured
    target_mean, target_std = masked_mean_std(to_lab(target_bgr[rows]), reference.selection[rows])
    gain = np.clip(target_std / (reference.std + 1e-6), MIN_SPREAD_GAIN, MAX_SPREAD_GAIN)
    offset = target_mean - reference.mean * gain
    rows = reference.painted
    lab = reference.lab[rows]
    height, width = lab.shape[:2]
    # The same float32 operations in the same order as clip((lab * gain + offset -> BGR) *
    # 255 + 0.5), on rows of width * 3 values: numpy's loop over a trailing axis of 3 costs
    # several times more.
    matched = lab.reshape(height, width * 3) * np.tile(gain.astype(np.float32), width)
    matched += np.tile(offset.astype(np.float32), width)
    matched_bgr = cv2.cvtColor(matched.reshape(height, width, 3), cv2.COLOR_LAB2BGR)
    matched_bgr *= 255.0
    matched_bgr += 0.5
    np.clip(matched_bgr, 0, 255, out=matched_bgr)
    recoloured = reference.bgr.copy()
    recoloured[rows] = matched_bgr
    return recoloured
