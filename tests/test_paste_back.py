"""Paste-back writes exactly where FaceFusion's does: inside the crop's mapped bounds."""

import numpy as np

from facefusion_ray.processors.paste_back import Region, crop_paste_area, mask_bounds, paste_back


def test_paste_back_never_writes_before_the_crops_mapped_bounds() -> None:
    # A 32x32 crop of a face twice its size (2 frame pixels a crop pixel) whose corner maps to
    # (10, 10): bilinear warping gives the frame pixels just before it some of the crop's
    # first row and column, but FaceFusion pastes from floor(10) on, so they stay as they were.
    frame_to_crop = np.array([[0.5, 0.0, -5.0], [0.0, 0.5, -5.0]])
    crop = np.full((32, 32, 3), 200, np.uint8)
    mask = np.ones((32, 32), np.float32)
    frame = np.zeros((96, 96, 3), np.uint8)
    touched = paste_back(frame, crop, mask, frame_to_crop, mask_bounds(mask))
    assert crop_paste_area(frame_to_crop, (32, 32), frame.shape) == Region(10, 10, 74, 74)
    assert touched == Region(10, 10, 74, 74)
    assert frame[:10].max() == 0 and frame[:, :10].max() == 0
    assert frame[74:].max() == 0 and frame[:, 74:].max() == 0
    assert frame[12:70, 12:70].min() == 200


def test_the_paste_area_is_clipped_to_the_frame() -> None:
    frame_to_crop = np.array([[1.0, 0.0, 5.5], [0.0, 1.0, -40.0]])
    assert crop_paste_area(frame_to_crop, (32, 32), (64, 64, 3)) == Region(0, 40, 27, 64)
