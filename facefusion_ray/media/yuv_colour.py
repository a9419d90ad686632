"""8-bit limited-range 4:2:0 YUV <-> BGR for rectangles of a frame, in the video's own matrix.

OpenCV's I420 conversions know BT.601 only, and HD video is usually BT.709. These take the
matrix as data and work on any even-aligned rectangle, so a frame is converted where faces are
and nowhere else. BT.601 rectangles go to BGR through OpenCV itself, so they are exactly the
pixels the analysis sees of the whole frame; other matrices through `cv2.transform` (rounded).

Towards YUV each 2x2 block's chroma comes from its top-left pixel, as OpenCV's I420 conversion
takes it: for BT.601 the pixels of a swapped region are exactly those the whole-frame conversion
gave before frames kept their planes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

# Limited ("tv") range of 8-bit video: luma 16..235 (219 steps), chroma 16..240 around 128.
_LUMA_STEPS, _CHROMA_STEPS = 219.0, 224.0
_OFFSETS = np.array([16.0, 128.0, 128.0])

Box = tuple[int, int, int, int]  # x0, y0, x1, y1: a half-open pixel rectangle


@dataclass(frozen=True)
class YuvMatrix:
    """A colour space's luma weights for red and blue (green is the rest)."""

    name: str
    kr: float
    kb: float

    @functools.cached_property
    def to_yuv(self) -> np.ndarray:
        """3x4 `cv2.transform` matrix from (B, G, R) to limited-range (Y, U, V)."""
        kr, kb = self.kr, self.kb
        kg = 1.0 - kr - kb
        luma = np.array([kb, kg, kr])
        blue_difference = (np.array([1.0, 0.0, 0.0]) - luma) / (2.0 * (1.0 - kb))
        red_difference = (np.array([0.0, 0.0, 1.0]) - luma) / (2.0 * (1.0 - kr))
        rows = np.stack(
            [
                luma * _LUMA_STEPS / 255.0,
                blue_difference * _CHROMA_STEPS / 255.0,
                red_difference * _CHROMA_STEPS / 255.0,
            ]
        )
        return np.hstack([rows, _OFFSETS[:, None]]).astype(np.float32)

    @functools.cached_property
    def to_bgr(self) -> np.ndarray:
        """3x4 `cv2.transform` matrix from (Y, U, V) to (B, G, R): the inverse of `to_yuv`."""
        inverse = np.linalg.inv(self.to_yuv[:, :3].astype(np.float64))
        return np.hstack([inverse, (-inverse @ _OFFSETS)[:, None]]).astype(np.float32)


BT601 = YuvMatrix("bt601", kr=0.299, kb=0.114)
BT709 = YuvMatrix("bt709", kr=0.2126, kb=0.0722)


def yuv420_to_bgr(y: np.ndarray, u: np.ndarray, v: np.ndarray, matrix: YuvMatrix) -> np.ndarray:
    """BGR uint8 (h, w, 3) from luma (h, w) and chroma (h/2, w/2) planes of an even rectangle;
    each chroma sample covers its 2x2 block, as in OpenCV's I420 conversion."""
    if matrix == BT601:
        height, width = y.shape
        i420 = np.empty((height * 3 // 2, width), dtype=np.uint8)
        i420[:height] = y
        chroma = i420[height:].reshape(2, height // 2, width // 2)
        chroma[0], chroma[1] = u, v
        return cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
    size = (y.shape[1], y.shape[0])
    u_full = cv2.resize(u, size, interpolation=cv2.INTER_NEAREST)
    v_full = cv2.resize(v, size, interpolation=cv2.INTER_NEAREST)
    return cv2.transform(cv2.merge([y, u_full, v_full]), matrix.to_bgr)


def bgr_to_yuv420(bgr: np.ndarray, matrix: YuvMatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Luma (h, w) and chroma (h/2, w/2) uint8 planes of an even-sized BGR rectangle; each
    2x2 block's chroma is its top-left pixel's, as in OpenCV's I420 conversion (for BT.601 it
    is OpenCV's, so swapped pixels come out as they did when whole frames were converted)."""
    height, width = bgr.shape[:2]
    if matrix == BT601:
        planes = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).reshape(-1)
        quarter = (height // 2) * (width // 2)
        luma_size = height * width
        return (
            planes[:luma_size].reshape(height, width),
            planes[luma_size : luma_size + quarter].reshape(height // 2, width // 2),
            planes[luma_size + quarter :].reshape(height // 2, width // 2),
        )
    luma = cv2.transform(bgr, matrix.to_yuv[:1])
    # Nearest-neighbour halving takes each 2x2 block's top-left pixel.
    top_left = cv2.resize(bgr, (width // 2, height // 2), interpolation=cv2.INTER_NEAREST)
    chroma = cv2.transform(top_left, matrix.to_yuv[1:])
    return luma.reshape(height, width), chroma[..., 0], chroma[..., 1]


def even_box(box: Box, width: int, height: int) -> Box:
    """`box` clipped to the frame and grown outwards to even edges (whole 4:2:0 blocks)."""
    x0, y0, x1, y1 = box
    x0, y0 = max(0, x0) & ~1, max(0, y0) & ~1
    x1, y1 = min(width, x1 + (x1 & 1)), min(height, y1 + (y1 & 1))
    return x0, y0, max(x0, x1), max(y0, y1)


def merged_boxes(boxes: list[Box]) -> list[Box]:
    """Overlapping boxes replaced by their bounding box until none overlap, so each pixel is
    converted once; empty boxes dropped."""
    merged = [box for box in boxes if box[2] > box[0] and box[3] > box[1]]
    changed = True
    while changed:
        changed = False
        kept: list[Box] = []
        for box in merged:
            for index, other in enumerate(kept):
                if _overlap(box, other):
                    kept[index] = _union(box, other)
                    changed = True
                    break
            else:
                kept.append(box)
        merged = kept
    return merged


def _union(a: Box, b: Box) -> Box:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
