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
    BT601,
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
        self.canvas = self._fill(whole_canvas or boxes is None)
        self._before = [self.canvas[y0:y1, x0:x1].copy() for x0, y0, x1, y1 in self._boxes]

    @property
    def boxes(self) -> list[Box]:
        """The even-aligned, non-overlapping rectangles where changes are looked for."""
        return list(self._boxes)

    def _fill(self, whole: bool) -> np.ndarray:
        frame = self._frame
        if whole and frame.matrix == BT601:
            # The analysis's view of the frame is this very conversion (and often made already).
            return frame.pixels.copy()
        if whole:
            return self._source.bgr((0, 0, frame.width, frame.height), frame)
        # The analysis's view, when a cache miss made it, already holds these pixels.
        analysed = frame.pixels_if_converted() if frame.matrix == BT601 else None
        canvas = np.empty((frame.height, frame.width, 3), dtype=np.uint8)
        for box in self._boxes:
            x0, y0, x1, y1 = box
            source = self._source.bgr(box, frame) if analysed is None else analysed[y0:y1, x0:x1]
            canvas[y0:y1, x0:x1] = source
        return canvas

    def finish(self) -> np.ndarray:
        """The frame's planes (I420, one array) with every changed pixel converted back in the
        frame's matrix; the decoded planes themselves when nothing changed."""
        output: YuvPlanes | None = None
        for box, before in zip(self._boxes, self._before, strict=True):
            x0, y0, x1, y1 = box
            blue, green, red = cv2.split(cv2.absdiff(self.canvas[y0:y1, x0:x1], before))
            changed = cv2.bitwise_or(cv2.bitwise_or(blue, green), red) != 0
            changed_box = _changed_box(changed)
            if changed_box is None:
                continue
            if output is None:
                output = YuvPlanes(self._source.array.copy(), self._frame.width, self._frame.height)
            cx0, cy0, cx1, cy1 = changed_box
            self._store(
                output,
                (x0 + cx0, y0 + cy0, x0 + cx1, y0 + cy1),
                changed[cy0:cy1, cx0:cx1],
            )
        return self._source.array if output is None else output.array

    def _store(self, output: YuvPlanes, box: Box, changed: np.ndarray) -> None:
        x0, y0, x1, y1 = box
        luma, u, v = bgr_to_yuv420(self.canvas[y0:y1, x0:x1], self._frame.matrix)
        np.copyto(output.y[y0:y1, x0:x1], luma, where=changed)
        # A chroma sample changes with any of its 2x2 pixels (slices: numpy's small-axis
        # reductions are ten times slower).
        blocks = (
            changed[0::2, 0::2] | changed[1::2, 0::2] | changed[0::2, 1::2] | changed[1::2, 1::2]
        )
        chroma = np.s_[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2]
        np.copyto(output.u[chroma], u, where=blocks)
        np.copyto(output.v[chroma], v, where=blocks)


def _changed_box(changed: np.ndarray) -> Box | None:
    """The even-aligned bounding box of the True pixels of `changed` (even-sized), or None."""
    rows = np.flatnonzero(changed.any(axis=1))
    if rows.size == 0:
        return None
    columns = np.flatnonzero(changed.any(axis=0))
    height, width = changed.shape
    box = (int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1)
    return even_box(box, width, height)
