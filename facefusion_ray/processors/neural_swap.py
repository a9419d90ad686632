"""FaceFusion-compatible neural face swappers: inswapper_128 (and its FP16 file), hyperswap_1a_256
and simswap_256.

Each target face is warped onto the model's template at the model's size, normalised as the
manifest says, swapped with the source identity, turned back into pixels and pasted into the
frame through a box mask (optionally limited by an occlusion mask).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facefusion_ray.analysis.face import Face
from facefusion_ray.inference.sessions import ModelSession
from facefusion_ray.processors.box_mask import (
    DEFAULT_MASK_BLUR,
    DEFAULT_MASK_PADDING,
    Padding,
    create_box_mask,
)
from facefusion_ray.processors.emap import inswapper_latent, read_emap
from facefusion_ray.processors.model_crops import (
    template_reach,
    to_pixels,
    to_tensor,
    warp_to_template,
)
from facefusion_ray.processors.occlusion import OcclusionMasker, combine_masks
from facefusion_ray.processors.paste_back import Region, mask_bounds, paste_back
from facefusion_ray.zoo.manifest import ModelSpec, TensorSpec

SUPPORTED_MODEL_TYPES = frozenset({"inswapper", "hyperswap", "simswap"})
# FaceFusion maps --face-swapper-weight 0..1 onto this share of the target's own identity.
DEFAULT_WEIGHT_MIX = (0.35, -0.35)
SOURCE_INPUT = "source"
TARGET_INPUT = "target"


@dataclass(frozen=True)
class AlignedTarget:
    crop: np.ndarray  # (S, S, 3) uint8 BGR
    frame_to_crop: np.ndarray  # 2x3
    mask: np.ndarray  # (S, S) float32
    mask_box: Region  # the crop rectangle where `mask` is not zero
    source_row: np.ndarray  # (512,) float32, what the model's `source` input gets for this face


class NeuralSwapper:
    """Replaces target faces with one source identity, given as its raw ArcFace embedding."""

    def __init__(
        self,
        session: ModelSession,
        spec: ModelSpec,
        source_embedding_raw: np.ndarray,
        *,
        emap: np.ndarray | None = None,
        embedding_converter: ModelSession | None = None,
        occluder: OcclusionMasker | None = None,
        mask_blur: float = DEFAULT_MASK_BLUR,
        mask_padding: Padding = DEFAULT_MASK_PADDING,
        weight: float | None = None,
    ) -> None:
        """`emap` defaults to the one in the session's model file (inswapper only).
        `embedding_converter` is simswap's crossface_simswap session; without it simswap gets
        the normalised ArcFace embedding, which is not what FaceFusion 3.8 feeds.
        `weight` is FaceFusion's --face-swapper-weight (default: the manifest's): where it maps
        to a non-zero mix the source identity is blended with each target's own (normalised)
        embedding, which the faces must then carry."""
        model_type = str(spec.parameters.get("model_type", ""))
        if spec.kind != "swapper" or model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(f"model {spec.model_id} ({model_type or spec.kind}) is not supported")
        if spec.template is None:
            raise ValueError(f"model {spec.model_id} has no warp template")
        self.name = spec.model_id
        self._session = session
        self._model_type = model_type
        self._template = spec.template
        self._size = spec.size
        self._target = _tensor(spec.inputs, TARGET_INPUT, spec.model_id)
        self._output = spec.outputs[0]
        self._occluder = occluder
        self._box_mask = create_box_mask(spec.size, mask_blur, mask_padding)
        self._box_mask_box = mask_bounds(self._box_mask)
        self._target_mix = _target_mix(
            spec, spec.float_parameter("weight") if weight is None else weight
        )
        self._source = self._source_embedding(
            np.asarray(source_embedding_raw, dtype=np.float32).reshape(-1),
            emap,
            embedding_converter,
        )
        self.batches_faces = _is_dynamic(session.input_shape(TARGET_INPUT)[0]) and _is_dynamic(
            session.input_shape(SOURCE_INPUT)[0]
        )

    def align(self, frame: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """The face warped onto the model's template and size, and the frame-to-crop matrix."""
        return warp_to_template(frame, face, self._template, self._size)

    def reach(self, face: Face, frame_shape: tuple[int, ...]) -> Region:
        """The frame rectangle swapping `face` reads and writes."""
        return template_reach(face, self._template, self._size, frame_shape)

    def swap(self, frame: np.ndarray, target: Face) -> Region:
        """Swap one face of `frame` in place; returns the frame region that was written."""
        return self.swap_batch(frame, [target])[0]

    def swap_batch(self, frame: np.ndarray, faces: Sequence[Face]) -> list[Region]:
        """Swap every face of one frame in place, all cut from the frame as it was given.

        With a dynamic batch dimension the faces go through the model as one batch, otherwise
        one at a time; either way the result is the same.
        """
        aligned = [self._prepare(frame, face) for face in faces]
        if not aligned:
            return []
        if self.batches_faces:
            swapped = list(self._run(aligned))
        else:
            swapped = [self._run([item])[0] for item in aligned]
        return [
            paste_back(frame, crop, item.mask, item.frame_to_crop, item.mask_box)
            for item, crop in zip(aligned, swapped, strict=True)
        ]

    def _prepare(self, frame: np.ndarray, face: Face) -> AlignedTarget:
        crop, matrix = self.align(frame, face)
        if self._occluder is None:
            # Every face shares the box mask: its bounds are found once.
            return AlignedTarget(
                crop, matrix, self._box_mask, self._box_mask_box, self._source_row(face)
            )
        mask = combine_masks(self._box_mask, self._occluder.mask(crop))
        return AlignedTarget(crop, matrix, mask, mask_bounds(mask), self._source_row(face))

    def _run(self, aligned: Sequence[AlignedTarget]) -> np.ndarray:
        """(N, S, S, 3) float32 BGR pixels in 0..255 for N aligned faces."""
        feeds = {
            TARGET_INPUT: np.stack([to_tensor(item.crop, self._target) for item in aligned]),
            SOURCE_INPUT: np.stack([item.source_row for item in aligned]),
        }
        output = self._session.run(feeds)[0]
        return np.stack([to_pixels(image, self._output) for image in output])

    def _source_embedding(
        self,
        raw: np.ndarray,
        emap: np.ndarray | None,
        embedding_converter: ModelSession | None,
    ) -> np.ndarray:
        if self._model_type == "inswapper":
            if emap is None:
                emap = read_emap(self._session.model_path)
            return inswapper_latent(raw, emap).reshape(-1)
        if self._model_type == "simswap" and embedding_converter is not None:
            converter_input = embedding_converter.input_names[0]
            feeds = {converter_input: raw.reshape(-1, raw.shape[-1]).astype(np.float32)}
            raw = embedding_converter.run(feeds)[0].reshape(-1).astype(np.float32)
        return _unit(raw)

    def _source_row(self, face: Face) -> np.ndarray:
        if self._target_mix == 0:
            return self._source
        if face.embedding is None:
            raise ValueError(
                f"{self.name}: a swapper weight other than 0.5 needs the target's embedding"
            )
        target = _unit(np.asarray(face.embedding, dtype=np.float32).reshape(-1))
        mixed = self._source * (1 - self._target_mix) + target * self._target_mix
        return mixed.astype(np.float32)


def _tensor(tensors: Sequence[TensorSpec], name: str, model_id: str) -> TensorSpec:
    for tensor in tensors:
        if tensor.name == name:
            return tensor
    raise ValueError(f"model {model_id} has no {name!r} input")


def _target_mix(spec: ModelSpec, weight: float) -> float:
    """How much of the target's own identity goes into the source row (FaceFusion's weight)."""
    mix = spec.parameters.get("weight_mix", DEFAULT_WEIGHT_MIX)
    if (
        not isinstance(mix, tuple)
        or len(mix) != 2
        or not all(isinstance(v, int | float) for v in mix)
    ):
        raise ValueError(f"model {spec.model_id}: weight_mix must be two numbers")
    return float(np.interp(weight, [0.0, 1.0], [float(mix[0]), float(mix[1])]))


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if norm == 0:
        raise ValueError("the source embedding is all zeros")
    return (vector / norm).astype(np.float32)


def _is_dynamic(dimension: int | str | None) -> bool:
    return not isinstance(dimension, int)
