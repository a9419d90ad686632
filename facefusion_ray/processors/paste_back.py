"""Blend an aligned crop back into its frame, touching only the face's own region."""

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Region:
    """Half-open pixel rectangle [x0, x1) x [y0, y1) of a frame."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def is_empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0


def mask_bounds(mask: np.ndarray) -> Region:
    """Bounding rectangle of the non-zero part of a crop-space mask."""
    ys, xs = np.nonzero(mask > 0)
    if ys.size == 0:
        return Region(0, 0, 0, 0)
    return Region(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def frame_region_of_crop_box(
    crop_box: Region, frame_to_crop: np.ndarray, frame_shape: tuple[int, ...]
) -> Region:
    """The frame rectangle that the crop-space box covers, clipped to the frame."""
    crop_to_frame = cv2.invertAffineTransform(frame_to_crop)
    corners = np.array(
        [
            [crop_box.x0, crop_box.y0],
            [crop_box.x1, crop_box.y0],
            [crop_box.x0, crop_box.y1],
            [crop_box.x1, crop_box.y1],
        ],
        dtype=np.float64,
    )
    mapped = corners @ crop_to_frame[:, :2].T + crop_to_frame[:, 2]
    height, width = frame_shape[:2]
    x0 = max(0, int(np.floor(mapped[:, 0].min())) - 1)
    y0 = max(0, int(np.floor(mapped[:, 1].min())) - 1)
    x1 = min(width, int(np.ceil(mapped[:, 0].max())) + 2)
    y1 = min(height, int(np.ceil(mapped[:, 1].max())) + 2)
    return Region(x0, y0, x1, y1)


def crop_paste_area(
    frame_to_crop: np.ndarray, crop_size: tuple[int, int], frame_shape: tuple[int, ...]
) -> Region:
    """The frame rectangle FaceFusion pastes a crop of `crop_size` (width, height) into: its
    mapped corners' bounds, floored and ceiled, clipped to the frame. Bilinear warping gives the
    row or column just past a crop's edge some weight; FaceFusion never writes it."""
    crop_to_frame = cv2.invertAffineTransform(frame_to_crop)
    width, height = crop_size
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
    mapped = corners @ crop_to_frame[:, :2].T + crop_to_frame[:, 2]
    frame_height, frame_width = frame_shape[:2]
    x0, y0 = np.clip(np.floor(mapped.min(axis=0)).astype(int), 0, (frame_width, frame_height))
    x1, y1 = np.clip(np.ceil(mapped.max(axis=0)).astype(int), 0, (frame_width, frame_height))
    return Region(int(x0), int(y0), int(x1), int(y1))


def crop_reach(
    frame_to_crop: np.ndarray, crop_size: tuple[int, int], frame_shape: tuple[int, ...]
) -> Region:
    """The frame rectangle a warp of the frame into a crop of `crop_size` (width, height)
    reads, clipped to the frame; a paste back from that crop writes inside it too."""
    width, height = crop_size
    return frame_region_of_crop_box(Region(0, 0, width, height), frame_to_crop, frame_shape)


def paste_back(
    frame: np.ndarray,
    crop: np.ndarray,
    crop_mask: np.ndarray,
    frame_to_crop: np.ndarray,
    crop_box: Region,
) -> Region:
    """Warp `crop` into `frame` in place, blended by `crop_mask`; returns the touched region.

    Only the rectangle covered by the mask is warped (never the whole frame), and pixels
    where the warped mask is exactly zero keep their original values bit for bit.
    """
    covered = frame_region_of_crop_box(crop_box, frame_to_crop, frame.shape)
    crop_height, crop_width = crop.shape[:2]
    area = crop_paste_area(frame_to_crop, (crop_width, crop_height), frame.shape)
    region = Region(
        max(covered.x0, area.x0),
        max(covered.y0, area.y0),
        min(covered.x1, area.x1),
        min(covered.y1, area.y1),
    )
    if region.is_empty:
        return region
    crop_to_region = cv2.invertAffineTransform(frame_to_crop)
    crop_to_region[:, 2] -= (region.x0, region.y0)
    size = (region.x1 - region.x0, region.y1 - region.y0)
    warped = cv2.warpAffine(
        crop, crop_to_region, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    weight = cv2.warpAffine(
        crop_mask, crop_to_region, size, flags=cv2.INTER_LINEAR, borderValue=0.0
    )[..., None]
    original = frame[region.y0 : region.y1, region.x0 : region.x1]
    blended = original.astype(np.float32) * (1.0 - weight) + warped.astype(np.float32) * weight
    frame[region.y0 : region.y1, region.x0 : region.x1] = np.clip(blended + 0.5, 0, 255).astype(
        np.uint8
    )
    return region
