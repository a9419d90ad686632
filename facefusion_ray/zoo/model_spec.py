"""A model zoo entry as data: its source and pin, preparation, tensors and parameters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from facefusion_ray.assets.fetch import Asset, Source
from facefusion_ray.errors import ModelError

ParameterValue = int | float | str | bool | tuple[int | float | str, ...]


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output. Image tensors also say how pixels and values relate:
    value = (pixel * pixel_scale - mean) / std, channels in `channel_order`; on an output the
    same relation turns values back into pixels."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str
    layout: str | None = None
    channel_order: str | None = None
    pixel_scale: float | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Preparation:
    recipe: str
    version: int


@dataclass(frozen=True)
class UpstreamHash:
    """The publisher's own checksum file of a source, e.g. FaceFusion's `<model>.hash`."""

    algorithm: str  # "crc32": FaceFusion's .hash files hold 8 hex digits
    sources: tuple[Source, ...]  # where the .hash file is published


@dataclass(frozen=True)
class ModelSource:
    """A model file as published, and where to get it."""

    file: str
    sha256: str | None  # None: pinned at first pull via the store's lock file
    locations: tuple[Source, ...]
    upstream_hash: UpstreamHash | None

    def asset(self, model_id: str, sha256: str) -> Asset:
        """An Asset for `fetch_asset`, pinned to `sha256` (the manifest's, or the lock file's)."""
        if self.sha256 is not None and sha256 != self.sha256:
            raise ModelError(
                f"model {model_id}: pin {sha256} contradicts the manifest's sha256 {self.sha256}"
            )
        try:
            return Asset(
                name=f"model {model_id} ({self.file})",
                filename=self.file,
                sha256=sha256,
                sources=self.locations,
            )
        except ValueError as error:
            raise ModelError(str(error)) from None


@dataclass(frozen=True)
class ModelSpec:
    model_id: str
    kind: str
    description: str
    vendor: str
    license: str
    source: ModelSource
    preparation: Preparation  # the default (CPU, FP32) recipe
    variants: Mapping[str, Preparation]  # extra prepared variants, e.g. "fp16"
    fp16_model: str | None  # an upstream FP16 model that replaces our own fp16 variant
    size: tuple[int, int]
    template: str | None
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    parameters: Mapping[str, ParameterValue]

    def float_parameter(self, name: str) -> float:
        value = self._parameter(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ModelError(f"model {self.model_id}: parameter {name} is not a number")
        return float(value)

    def _parameter(self, name: str) -> ParameterValue:
        if name not in self.parameters:
            raise ModelError(f"model {self.model_id}: manifest has no parameter {name}")
        return self.parameters[name]


@dataclass(frozen=True)
class Manifest:
    path: Path
    models: Mapping[str, ModelSpec]

    def model(self, model_id: str) -> ModelSpec:
        try:
            return self.models[model_id]
        except KeyError:
            known = ", ".join(sorted(self.models))
            raise ModelError(f"unknown model {model_id!r}; the manifest has: {known}") from None
