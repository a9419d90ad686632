"""How frames cross the ffmpeg pipes: as the video's own 4:2:0 YUV planes where that is exact.

swscale's default BGR <-> YUV conversion truncates and darkens the picture by about one level
each way; asking it for accurate rounding costs two thirds of the decode speed. For the
common case (8-bit yuv420p, limited range, BT.601 or BT.709, even size) the pipes carry the
video's planes: the decoder delivers them, the pipeline converts only the regions it changes
(media/yuv_colour.py, in the video's matrix) and hands the planes back to the encoder, so
pixels that no processor touched are encoded exactly as decoded. The whole-frame BGR view the
analysis reads is converted in the video's matrix too (OpenCV's own conversion for BT.601:
mean shift 0.06 levels instead of 2.04 after a round trip, and decoding stays at ~300 fps), so
a BT.709 video is analysed in the colours FaceFusion sees, and the faces land where its do.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from facefusion_ray.media.colour_tags import ColourTags
from facefusion_ray.media.yuv_colour import BT601, YuvMatrix, bgr_to_yuv420, yuv420_to_bgr

# For the other formats: let swscale convert, but with accurate rounding.
ACCURATE_COLOUR_CONVERSION = ("-sws_flags", "accurate_rnd+full_chroma_int")


@dataclass(frozen=True)
class PipeFormat:
    """The raw pixel format on an ffmpeg pipe, how to turn it into BGR frames and back, and the
    colour matrix of its YUV planes."""

    ffmpeg_pixel_format: str
    width: int
    height: int
    matrix: YuvMatrix = BT601

    @property
    def is_yuv420(self) -> bool:
        return self.ffmpeg_pixel_format == "yuv420p"

    @property
    def frame_bytes(self) -> int:
        if self.is_yuv420:
            return self.width * self.height * 3 // 2
        return self.width * self.height * 3

    @property
    def planes_shape(self) -> tuple[int, int]:
        """The I420 layout of a 4:2:0 frame as one array: Y rows, then U, then V."""
        return self.height * 3 // 2, self.width

    @property
    def conversion_args(self) -> tuple[str, ...]:
        return () if self.is_yuv420 else ACCURATE_COLOUR_CONVERSION

    def to_bgr(self, buffer: bytes | bytearray | memoryview) -> np.ndarray:
        """The whole frame as BGR; 4:2:0 planes in their own matrix."""
        planes = np.frombuffer(buffer, dtype=np.uint8)
        if not self.is_yuv420:
            return planes.reshape(self.height, self.width, 3)
        if self.matrix == BT601:
            return cv2.cvtColor(planes.reshape(self.planes_shape), cv2.COLOR_YUV2BGR_I420)
        luma_size, quarter = self.width * self.height, (self.width // 2) * (self.height // 2)
        chroma_shape = (self.height // 2, self.width // 2)
        return yuv420_to_bgr(
            planes[:luma_size].reshape(self.height, self.width),
            planes[luma_size : luma_size + quarter].reshape(chroma_shape),
            planes[luma_size + quarter :].reshape(chroma_shape),
            self.matrix,
        )

    def from_bgr(self, frame: np.ndarray) -> np.ndarray:
        """What crosses the pipe for a whole BGR frame, in this pipe's matrix."""
        if not self.is_yuv420:
            return np.ascontiguousarray(frame)
        if self.matrix == BT601:
            return cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
        luma, u, v = bgr_to_yuv420(frame, self.matrix)
        return np.concatenate([luma.ravel(), u.ravel(), v.ravel()]).reshape(self.planes_shape)


def decoding_pipe_format(
    source_pixel_format: str, width: int, height: int, colour: ColourTags | None = None
) -> PipeFormat:
    """YUV planes for 8-bit limited-range 4:2:0 sources of even size in a matrix converted here
    (BT.601, BT.709), BGR for the rest."""
    colour = colour or ColourTags()
    even = width % 2 == 0 and height % 2 == 0
    if source_pixel_format == "yuv420p" and even and colour.planes_convertible:
        return PipeFormat("yuv420p", width, height, colour.matrix)
    return PipeFormat("bgr24", width, height, colour.matrix)


def encoding_pipe_format(width: int, height: int, colour: ColourTags | None = None) -> PipeFormat:
    """4:2:0 output needs an even size; odd sizes go to 4:4:4 through swscale."""
    matrix = (colour or ColourTags()).matrix
    if width % 2 == 0 and height % 2 == 0:
        return PipeFormat("yuv420p", width, height, matrix)
    return PipeFormat("bgr24", width, height, matrix)
