"""The weights-free `classic` swapper: landmark-aligned warp, colour transfer, feathered blend."""

from dataclasses import dataclass

import cv2
import numpy as np

from facefusion_ray.analysis.face import Face
from facefusion_ray.analysis.templates import estimate_similarity
from facefusion_ray.processors.color_transfer import ColourReference, transfer_lab_statistics
from facefusion_ray.processors.masks import coverage_mask, face_outline_mask
from facefusion_ray.processors.paste_back import Region, crop_reach, mask_bounds, paste_back

CLASSIC_TEMPLATE = "arcface_112_v2"
DEFAULT_CROP_SIZE = 256


@dataclass(frozen=True)
class AlignedSource:
    """A source face warped onto the template, ready to be pasted onto any target face."""

    crop: np.ndarray  # (S, S, 3) uint8 BGR
    coverage: np.ndarray  # (S, S) float32: 1 where the crop holds real source pixels
    crop_size: int


def crop_face(image: np.ndarray, face: Face, crop_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The face warped onto the template at `crop_size`, and the image-to-crop matrix."""
    affine = estimate_similarity(face.landmarks_5, CLASSIC_TEMPLATE, crop_size)
    crop = cv2.warpAffine(
        image,
        affine,
        (crop_size, crop_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return crop, affine


def align_source(
    image: np.ndarray, face: Face, crop_size: int = DEFAULT_CROP_SIZE
) -> AlignedSource:
    crop, affine = crop_face(image, face, crop_size)
    return AlignedSource(crop, coverage_mask(image.shape[:2], affine, crop_size), crop_size)


class ClassicSwapper:
    """Replaces target faces with one aligned source face."""

    name = "classic"

    def __init__(self, source: AlignedSource, feather: float = 0.08) -> None:
        self._source = source
        self._mask = face_outline_mask(source.crop_size, feather) * source.coverage
        self._mask_box = mask_bounds(self._mask)
        self._colour_reference = ColourReference.measure(source.crop, self._mask)

    def reach(self, face: Face, frame_shape: tuple[int, ...]) -> Region:
        """The frame rectangle swapping `face` reads and writes."""
        affine = estimate_similarity(face.landmarks_5, CLASSIC_TEMPLATE, self._source.crop_size)
        size = (self._source.crop_size, self._source.crop_size)
        return crop_reach(affine, size, frame_shape)

    def swap(self, frame: np.ndarray, target: Face) -> Region:
        """Swap one face of `frame` in place; returns the frame region that was written."""
        target_crop, frame_to_crop = crop_face(frame, target, self._source.crop_size)
        recoloured = transfer_lab_statistics(self._colour_reference, target_crop)
        return paste_back(frame, recoloured, self._mask, frame_to_crop, self._mask_box)
