"""XSeg occlusion mask (xseg_1) of an aligned face crop, as FaceFusion computes it."""

from __future__ import annotations

import cv2
import numpy as np

from facefusion_ray.inference.sessions import ModelSession
from facefusion_ray.zoo.manifest import ModelSpec


class OcclusionMasker:
    """Where the face is visible (1) rather than covered by hands, hair, objects (0)."""

    def __init__(self, session: ModelSession, spec: ModelSpec) -> None:
        tensor = spec.inputs[0]
        if tensor.layout != "NHWC":
            raise ValueError(f"model {spec.model_id}: expected an NHWC input, got {tensor.layout}")
        self._session = session
        self._input_name = session.input_names[0]
        self._size = spec.size
        self._reverse_channels = tensor.channel_order == "RGB"
        self._pixel_scale = tensor.pixel_scale if tensor.pixel_scale is not None else 1.0
        self._mean = np.asarray(tensor.mean or (0.0, 0.0, 0.0), dtype=np.float32)
        self._std = np.asarray(tensor.std or (1.0, 1.0, 1.0), dtype=np.float32)
        self._blur_sigma = spec.float_parameter("mask_blur_sigma")
        self._floor = spec.float_parameter("mask_floor")

    def mask(self, crop_bgr: np.ndarray) -> np.ndarray:
        """(height, width) float32 mask in 0..1 for a BGR crop of any size."""
        height, width = crop_bgr.shape[:2]
        resized = cv2.resize(crop_bgr, self._size).astype(np.float32)
        if self._reverse_channels:
            resized = resized[:, :, ::-1]
        values = (resized * self._pixel_scale - self._mean) / self._std
        blob = np.ascontiguousarray(values[None], dtype=np.float32)
        raw = self._session.run({self._input_name: blob})[0][0]
        raw = np.clip(raw.reshape(raw.shape[0], raw.shape[1]), 0.0, 1.0).astype(np.float32)
        resized_mask = cv2.resize(raw, (width, height))
        blurred = cv2.GaussianBlur(resized_mask, (0, 0), self._blur_sigma).clip(0.0, 1.0)
        # Blurring then cutting at the floor pulls the edge inside the visible area.
        return (blurred.clip(self._floor, 1.0) - self._floor) / (1.0 - self._floor)


def combine_masks(box_mask: np.ndarray, occlusion_mask: np.ndarray) -> np.ndarray:
    """A pixel is kept only as much as every mask keeps it."""
    return np.minimum(box_mask, occlusion_mask).clip(0.0, 1.0)
