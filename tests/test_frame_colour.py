"""The analysis sees a frame in its own colour matrix, as FaceFusion sees a tagged video."""

import cv2
import numpy as np

from facefusion_ray.media.decode import DecodedFrame
from facefusion_ray.media.yuv_colour import BT601, BT709, yuv420_to_bgr


def test_the_analysis_view_of_a_frame_is_converted_in_its_matrix() -> None:
    width, height = 64, 48
    planes = np.random.default_rng(7).integers(16, 236, (height * 3 // 2, width), np.uint8)
    flat, luma, quarter = planes.reshape(-1), width * height, width * height // 4
    y = flat[:luma].reshape(height, width)
    u = flat[luma : luma + quarter].reshape(height // 2, width // 2)
    v = flat[luma + quarter :].reshape(height // 2, width // 2)
    bt601 = DecodedFrame(planes.tobytes(), "yuv420p", width, height, BT601).pixels
    bt709 = DecodedFrame(planes.tobytes(), "yuv420p", width, height, BT709).pixels
    assert np.array_equal(bt601, cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_I420))
    assert np.array_equal(bt709, yuv420_to_bgr(y, u, v, BT709))
    assert np.abs(bt709.astype(int) - bt601).mean() > 2.0
