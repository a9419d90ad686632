"""Face crops for the neural models: warped onto a model's template, and converted to and from
its tensors by the layout, channel order and normalisation the manifest gives."""

from __future__ import annotations

import cv2
import numpy as np

from facefusion_ray.analysis.face import Face
from facefusion_ray.analysis.templates import estimate_similarity
from facefusion_ray.processors.paste_back import Region, crop_reach
from facefusion_ray.zoo.manifest import TensorSpec


def warp_to_template(
    frame: np.ndarray, face: Face, template: str, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The face warped onto `template` at `size`, and the frame-to-crop matrix."""
    matrix = estimate_similarity(face.landmarks_5, template, size)
    crop = cv2.warpAffine(
        frame, matrix, size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )
    return crop, matrix


def template_reach(
    face: Face, template: str, size: tuple[int, int], frame_shape: tuple[int, ...]
) -> Region:
    """The frame rectangle that `warp_to_template` reads for `face` (and pasting back writes)."""
    return crop_reach(estimate_similarity(face.landmarks_5, template, size), size, frame_shape)


def to_tensor(crop_bgr: np.ndarray, tensor: TensorSpec) -> np.ndarray:
    """(3, S, S) float32 model input from a BGR uint8 crop."""
    pixels = crop_bgr[:, :, ::-1] if tensor.channel_order == "RGB" else crop_bgr
    values = np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)
    # (x * scale - mean) / std in place; a step by 1 or 0 leaves every value as it is.
    scale, mean, std = _scale(tensor), _mean(tensor), _std(tensor)
    if scale != 1.0:
        values *= scale
    if mean.any():
        values -= mean[:, None, None]
    if (std != 1.0).any():
        values /= std[:, None, None]
    return values


def to_pixels(image: np.ndarray, tensor: TensorSpec) -> np.ndarray:
    """(S, S, 3) float32 BGR pixels in 0..255 from one (3, S, S) model output."""
    values = image.astype(np.float32)
    # clip((x * std + mean) / scale) in place; a step by 1 or 0 leaves every value as it is.
    scale, mean, std = _scale(tensor), _mean(tensor), _std(tensor)
    if (std != 1.0).any():
        values *= std[:, None, None]
    if mean.any():
        values += mean[:, None, None]
    if scale != 1.0:
        values /= scale
    np.clip(values, 0.0, 255.0, out=values)
    if tensor.channel_order == "RGB":
        values = values[::-1]
    return np.ascontiguousarray(values.transpose(1, 2, 0))


def _scale(tensor: TensorSpec) -> float:
    return tensor.pixel_scale if tensor.pixel_scale is not None else 1.0


def _mean(tensor: TensorSpec) -> np.ndarray:
    return np.asarray(tensor.mean or (0.0, 0.0, 0.0), dtype=np.float32)


def _std(tensor: TensorSpec) -> np.ndarray:
    return np.asarray(tensor.std or (1.0, 1.0, 1.0), dtype=np.float32)
