"""Changing a 4:2:0 frame through BGR only where faces are: the rest stays as decoded.

`PlaneEdit` converts the rectangles the processors will read into a frame-sized BGR canvas
(nothing else of it is filled: the processors must stay inside those rectangles), and `finish`
writes back into a copy of the decoded planes only the pixels whose BGR value changed, and the
chroma of their 2x2 blocks. Everything else, inside the rectangles or not, keeps its decoded
bytes, and the conversion costs what the faces cover, not the frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from facefusion_ray.media.decode import DecodedFrame
from facefusion_ray.media.yuv_colour import (
    Box,
    bgr_to_yuv420,
    even_box,
    merged_boxes,
    yuv420_to_bgr,
)


class YuvPlanes:
    """Writable views of the Y, U and V planes of one I420 array."""

    def __init__(self, planes: np.ndarray, width: int, height: int) -> None:
        flat = planes.reshape(-1)
        quarter = (width // 2) * (height // 2)
        self.array = planes
        self.y = flat[: width * height].reshape(height, width)
        self.u = flat[width * height : width * height + quarter].reshape(height // 2, width // 2)
        self.v = flat[width * height + quarter :].reshape(height // 2, width // 2)

    def bgr(self, box: Box, frame: DecodedFrame) -> np.ndarray:
        x0, y0, x1, y1 = box
        luma = self.y[y0:y1, x0:x1]
        u = self.u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2]
        v = self.v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2]
        return yuv420_to_bgr(luma, u, v, frame.matrix)


# OpenCV converts between 4:2:0 and BGR 64 pixels of a row at a time and the rest of the row
# one by one, several times slower a pixel: rectangles are converted widened to whole vectors.
# Every pixel converts alone (with its 2x2 block's chroma) and the same in either part of the
# row (tests/test_planes.py), so the extra columns change nothing; only a box's own are used.
_VECTOR_PIXELS = 64


class PlaneEdit:
    """A BGR canvas of `frame` for the processors, filled in `boxes` (None: the whole frame;
    `whole_canvas` fills it all while changes are still looked for in `boxes` alone), and the
    decoded planes with its changes put back (`finish`)."""

    def __init__(
        self, frame: DecodedFrame, boxes: Sequence[Box] | None, whole_canvas: bool = False
    ) -> None:
        planes = frame.planes
        if planes is None:
            raise ValueError("a plane edit needs a frame decoded as 4:2:0 planes")
        self._frame = frame
        self._source = YuvPlanes(planes, frame.width, frame.height)
        if boxes is None:
            self._boxes = [(0, 0, frame.width, frame.height)]
        else:
            even = [even_box(box, frame.width, frame.height) for box in boxes]
            self._boxes = merged_boxes(even)
        self.canvas, self._before = self._fill(whole_canvas or boxes is None)

    @property
    def boxes(self) -> list[Box]:
        """The even-aligned, non-overlapping rectangles where changes are looked for."""
        return list(self._boxes)

    def _fill(self, whole: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        """The canvas, and each box's pixels as filled (arrays nothing else writes)."""
        frame = self._frame
        if whole:
            # The analysis's view of the frame is this very conversion (and often made already).
            canvas = frame.pixels.copy()
            return canvas, [canvas[y0:y1, x0:x1].copy() for x0, y0, x1, y1 in self._boxes]
        # The analysis's view, when a cache miss made it, already holds these pixels (and the
        # analysis only reads it).
        analysed = frame.pixels_if_converted()
        canvas = np.empty((frame.height, frame.width, 3), dtype=np.uint8)
        before = []
        for x0, y0, x1, y1 in self._boxes:
            if analysed is None:
                start, end = _vector_span(x0, x1, frame.width)
                converted = self._source.bgr((start, y0, end, y1), frame)
                source = converted[:, x0 - start : x1 - start]
            else:
                source = analysed[y0:y1, x0:x1]
            canvas[y0:y1, x0:x1] = source
            before.append(source)
        return canvas, before

    def finish(self) -> np.ndarray:
        """The frame's planes (I420, one array) with every changed pixel converted back in the
        frame's matrix; the decoded planes themselves when nothing changed."""
        output: YuvPlanes | None = None
        for box, before in zip(self._boxes, self._before, strict=True):
            x0, y0, x1, y1 = box
            # Grey of a pixel with 255 in any channel is never 0 (blue alone gives 29).
            changed = cv2.cvtColor(
                cv2.compare(self.canvas[y0:y1, x0:x1], before, cv2.CMP_NE), cv2.COLOR_BGR2GRAY
            )
            cx, cy, cw, ch = cv2.boundingRect(changed)
            if cw == 0:
                continue
            if output is None:
                output = YuvPlanes(self._source.array.copy(), self._frame.width, self._frame.height)
            cx0, cy0, cx1, cy1 = even_box((cx, cy, cx + cw, cy + ch), x1 - x0, y1 - y0)
            self._store(output, (x0 + cx0, y0 + cy0, x0 + cx1, y0 + cy1), changed[cy0:cy1, cx0:cx1])
        return self._source.array if output is None else output.array

    def _store(self, output: YuvPlanes, box: Box, changed: np.ndarray) -> None:
        """Writes the canvas's pixels in `box` where `changed` is non-zero, and the chroma of
        their 2x2 blocks."""
        x0, y0, x1, y1 = box
        start, end = _vector_span(x0, x1, self._frame.width)
        luma, u, v = bgr_to_yuv420(self.canvas[y0:y1, start:end], self._frame.matrix)
        cv2.copyTo(luma[:, x0 - start : x1 - start], changed, output.y[y0:y1, x0:x1])
        # A block's average is non-zero when any of its pixels changed.
        height, width = changed.shape
        blocks = cv2.resize(changed, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
        inner = np.s_[:, (x0 - start) // 2 : (x1 - start) // 2]
        chroma = np.s_[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2]
        cv2.copyTo(u[inner], blocks, output.u[chroma])
        cv2.copyTo(v[inner], blocks, output.v[chroma])


def _vector_span(x0: int, x1: int, width: int) -> tuple[int, int]:
    """Columns around `x0 .. x1` (even) a whole number of OpenCV's vectors wide, inside the
    frame where it is wide enough."""
    span = min(width, -(-(x1 - x0) // _VECTOR_PIXELS) * _VECTOR_PIXELS)
    start = min(x0, width - span)
    return start, start + span
