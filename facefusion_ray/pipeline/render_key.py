"""Deterministic keys for a render and its chunks, from everything that shapes their pixels.

Two runs with the same target content, source images, models and output-affecting options get
the same keys, so finished segments and outputs are found again; anything that only changes
how the work is scheduled (workers, stores, caches, chunk size) is left out of the render key.
The output location is part of the key, so two renders of one job never share segments.
Segments are named by frame range, so a new chunk size simply finds none of the old ones.
"""

import dataclasses
import hashlib
import json
from collections.abc import Sequence

from facefusion_ray.pipeline.analysis_key import pinned_sha256
from facefusion_ray.pipeline.chunks import Chunk
from facefusion_ray.pipeline.model_loading import job_manifest
from facefusion_ray.settings import SwapSettings
from facefusion_ray.zoo.model_store import ModelStore

# Bump when rendering code changes its output for the same inputs: old segments stop matching.
RENDER_KEY_VERSION = 1
RENDER_KEY_HEX_DIGITS = 24
# Scheduling and storage options: they change where and how fast, never which pixels.
_SCHEDULING_FIELDS = (
    "chunk_frames",
    "workers",
    "model_store",
    "manifest_path",
    "analysis_cache",
    "use_analysis_cache",
    "execution",
    "max_pixels",  # refuses inputs; never changes the pixels of one it accepts
)


def output_affecting_settings(settings: SwapSettings) -> dict[str, object]:
    fields = dataclasses.asdict(settings)
    for name in _SCHEDULING_FIELDS:
        fields.pop(name)
    # FP16 sessions on a GPU give (slightly) different pixels than FP32 ones on a CPU.
    fields["device"] = settings.execution.device
    fields["precision"] = settings.execution.precision
    return fields


def model_hashes(settings: SwapSettings) -> dict[str, str]:
    """Pinned SHA-256 of every model that draws pixels (the analysis models are in its key)."""
    store = ModelStore(settings.model_store, manifest=job_manifest(settings))
    models = [
        model
        for model in (
            None if settings.uses_classic_swapper else settings.face_swapper_model,
            settings.face_enhancer_model,
            settings.face_occluder_model,
        )
        if model is not None
    ]
    if not settings.uses_classic_swapper:
        spec = store.manifest.model(settings.face_swapper_model)
        if spec.parameters.get("model_type") == "simswap":
            models.append("crossface_simswap")
    return {model: pinned_sha256(store, model) for model in models}


def render_key(
    output: str,
    video_fingerprint: str,
    source_fingerprints: Sequence[str],
    settings: SwapSettings,
    analysis_key: str,
) -> str:
    content = {
        "version": RENDER_KEY_VERSION,
        "output": output,
        "video": video_fingerprint,
        "sources": list(source_fingerprints),
        "settings": output_affecting_settings(settings),
        "models": model_hashes(settings),
        "analysis": analysis_key,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:RENDER_KEY_HEX_DIGITS]


def chunk_name(chunk: Chunk) -> str:
    """Segments are named by their frame range inside the render's folder."""
    return f"frames-{chunk.start:08d}-{chunk.count:06d}"
