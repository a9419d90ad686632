"""Resolve a model id to the verified, prepared ONNX file a session loads.

Prepared files live at `cache_root()/models/<model_id>/<source_sha256[:16]>-<recipe>-r<N>.onnx`
beside a `.sha256` sidecar; both are checked on every resolve and rebuilt once when damaged.
"""

from __future__ import annotations

import logging
from pathlib import Path

from filelock import FileLock

from facefusion_ray.assets.fetch import fetch_asset
from facefusion_ray.errors import ModelError
from facefusion_ray.models.manifest import ModelSpec, get_model_spec
from facefusion_ray.models.prepare import get_recipe, is_prepared_intact, write_prepared_model
from facefusion_ray.paths import cache_root

logger = logging.getLogger(__name__)


def prepared_model_path(spec: ModelSpec) -> Path:
    """Where the prepared file of `spec` is kept (it may not exist yet).

    The recipe id is part of the name so that switching a model to another recipe with the
    same version number can never pick up a stale file.
    """
    preparation = spec.preparation
    name = f"{spec.source.sha256[:16]}-{preparation.recipe}-r{preparation.version}.onnx"
    return cache_root() / "models" / spec.model_id / name


def resolve_source_path(model_id: str) -> Path:
    """The verified pinned source file of `model_id`, exactly as published."""
    return fetch_asset(get_model_spec(model_id).source)


def resolve_model_path(model_id: str) -> Path:
    """Fetch and verify the source, prepare it once (under a file lock), return the result."""
    spec = get_model_spec(model_id)
    recipe = get_recipe(spec.preparation.recipe, spec.preparation.version)
    source = fetch_asset(spec.source)
    prepared = prepared_model_path(spec)
    if is_prepared_intact(prepared):
        return prepared
    prepared.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(prepared.with_name(prepared.name + ".lock"))):
        if is_prepared_intact(prepared):
            return prepared  # another process prepared it while we waited
        if prepared.exists():
            logger.warning("prepared model %s does not match its sidecar; rebuilding", prepared)
        write_prepared_model(source, prepared, recipe)
    if not is_prepared_intact(prepared):
        raise ModelError(f"prepared model {prepared} fails its own sha256 check after writing")
    return prepared
