"""FaceFusion's box mask: the whole crop minus padded, blurred edges, in crop space."""

from __future__ import annotations

import cv2
import numpy as np

# FaceFusion's defaults for --face-mask-blur and --face-mask-padding (top, right, bottom, left).
DEFAULT_MASK_BLUR = 0.3
DEFAULT_MASK_PADDING = (0, 0, 0, 0)

Padding = tuple[int, int, int, int]


def create_box_mask(
    crop_size: tuple[int, int],
    blur: float = DEFAULT_MASK_BLUR,
    padding: Padding = DEFAULT_MASK_PADDING,
) -> np.ndarray:
    """(height, width) float32 mask for a crop of `crop_size` (width, height).

    `blur` is a fraction of the crop width (0..1); `padding` is in percent of the crop's height
    (top, bottom) or width (right, left). The blurred edge fades out inside the crop, so even with
    no padding at least one border pixel is 0.
    """
    width, height = crop_size
    top, right, bottom, left = padding
    blur_amount = int(width * 0.5 * blur)
    edge = max(blur_amount // 2, 1)
    mask = np.ones((height, width), dtype=np.float32)
    mask[: max(edge, int(height * top / 100)), :] = 0
    mask[-max(edge, int(height * bottom / 100)) :, :] = 0
    mask[:, : max(edge, int(width * left / 100))] = 0
    mask[:, -max(edge, int(width * right / 100)) :] = 0
    if blur_amount > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), blur_amount * 0.25)
    return mask
