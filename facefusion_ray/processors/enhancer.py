"""FaceFusion-compatible face enhancer (GFPGAN 1.4 and models shaped like it).

Each face is warped onto the model's template at the model's size, normalised as the manifest
says, restored by the model, turned back into pixels, pasted into the frame through a box mask
and finally mixed with the frame as it was by the blend amount (0: untouched, 100: all model).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from facefusion_ray.analysis.face import Face
from facefusion_ray.inference.sessions import ModelSession
from facefusion_ray.processors.box_mask import (
    DEFAULT_MASK_BLUR,
    DEFAULT_MASK_PADDING,
    Padding,
    create_box_mask,
)
from facefusion_ray.processors.model_crops import (
    template_reach,
    to_pixels,
    to_tensor,
    warp_to_template,
)
from facefusion_ray.processors.paste_back import (
    Region,
    frame_region_of_crop_box,
    mask_bounds,
    paste_back,
)
from facefusion_ray.zoo.manifest import ModelSpec

# FaceFusion's default for --face-enhancer-blend, in percent.
DEFAULT_BLEND = 80
BLEND_RANGE = range(0, 101)


class FaceEnhancer:
    """Restores faces in place, one at a time, each cut from the frame as the previous one left
    it (as FaceFusion does)."""

    def __init__(
        self,
        session: ModelSession,
        spec: ModelSpec,
        blend: int = DEFAULT_BLEND,
        mask_blur: float = DEFAULT_MASK_BLUR,
        mask_padding: Padding = DEFAULT_MASK_PADDING,
    ) -> None:
        """`blend` is FaceFusion's --face-enhancer-blend (0..100). FaceFusion's enhancer always
        pads its box mask by zero; `mask_padding` exists for callers that want otherwise."""
        if spec.kind != "enhancer":
            raise ValueError(f"model {spec.model_id} is a {spec.kind}, not an enhancer")
        if spec.template is None:
            raise ValueError(f"model {spec.model_id} has no warp template")
        if len(spec.inputs) != 1:
            raise ValueError(f"model {spec.model_id}: only single-input enhancers are supported")
        if blend not in BLEND_RANGE:
            raise ValueError(f"blend must be an integer from 0 to 100, not {blend}")
        self.name = spec.model_id
        self.blend = blend
        self._session = session
        self._template = spec.template
        self._size = spec.size
        self._input = spec.inputs[0]
        self._output = spec.outputs[0]
        self._box_mask = create_box_mask(spec.size, mask_blur, mask_padding)
        self._mask_box = mask_bounds(self._box_mask)

    def align(self, frame: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """The face warped onto the model's template and size, and the frame-to-crop matrix."""
        return warp_to_template(frame, face, self._template, self._size)

    def reach(self, face: Face, frame_shape: tuple[int, ...]) -> Region:
        """The frame rectangle enhancing `face` reads and writes."""
        return template_reach(face, self._template, self._size, frame_shape)

    def enhance(self, frame: np.ndarray, face: Face) -> Region:
        """Enhance one face of `frame` in place; returns the frame region that was written."""
        crop, frame_to_crop = self.align(frame, face)
        region = frame_region_of_crop_box(self._mask_box, frame_to_crop, frame.shape)
        if region.is_empty:
            return region
        original = frame[region.y0 : region.y1, region.x0 : region.x1].copy()
        enhanced = self._run(crop)
        paste_back(frame, enhanced, self._box_mask, frame_to_crop, self._mask_box)
        pasted = frame[region.y0 : region.y1, region.x0 : region.x1]
        share = self.blend / 100
        # addWeighted rounds and saturates exactly as FaceFusion's blend_frame does.
        frame[region.y0 : region.y1, region.x0 : region.x1] = cv2.addWeighted(
            original, 1 - share, pasted, share, 0
        )
        return region

    def enhance_batch(self, frame: np.ndarray, faces: Sequence[Face]) -> list[Region]:
        """Enhance every face of one frame in place, in order."""
        return [self.enhance(frame, face) for face in faces]

    def _run(self, crop: np.ndarray) -> np.ndarray:
        """(S, S, 3) uint8 BGR restored crop from a (S, S, 3) uint8 BGR crop."""
        feeds = {self._input.name: to_tensor(crop, self._input)[np.newaxis]}
        output = self._session.run(feeds)[0][0]
        # FaceFusion rounds the model's output to 8-bit pixels before pasting it back.
        return np.round(to_pixels(output, self._output)).astype(np.uint8)
