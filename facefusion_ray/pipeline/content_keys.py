"""Content keys, derived from the settings' declared scopes and the render's model plan.

The analysis key names the analysis-cache entries a render may reuse: every setting declared
to shape the analysis and every model in an analysis role (file hash, size, template,
parameters). The render key names a render's segments and published output: the content of
its inputs, every setting declared to change pixels, the models that draw pixels and the
analysis key. Settings declared to change neither (workers, stores, caches) are in no key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from facefusion_ray.cache import SCHEMA_VERSION
from facefusion_ray.option_scopes import Scope, values_in_scope
from facefusion_ray.pipeline.chunks import Chunk
from facefusion_ray.pipeline.model_plan import ANALYSIS_ROLES, ModelPlan, Role
from facefusion_ray.settings import SwapSettings

# Bump when analysis code changes its results for the same inputs: cached entries stop matching.
# 2: derived from declared scopes and the model plan (version 1 missed the landmarker score).
# 3: frames of a BT.709 video analysed in BT.709 (they were converted as BT.601 before).
ANALYSIS_KEY_VERSION = 3
ANALYSIS_KEY_HEX_DIGITS = 20
# Bump when rendering code changes its output for the same inputs: old segments stop matching.
# 2: derived from declared scopes and the model plan.
# 3: untouched pixels encoded as decoded, faces' regions in the target's matrix, colour tags kept.
RENDER_KEY_VERSION = 3
RENDER_KEY_HEX_DIGITS = 24
PIXEL_ROLES = frozenset(Role) - ANALYSIS_ROLES


def content_digest(content: Mapping[str, object]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(canonical.encode()).hexdigest()


def analysis_key(settings: SwapSettings, plan: ModelPlan) -> str:
    content = {
        "version": ANALYSIS_KEY_VERSION,
        "schema": SCHEMA_VERSION,
        "settings": values_in_scope(settings, Scope.ANALYSIS),
        "models": plan.identities(ANALYSIS_ROLES),
    }
    return content_digest(content)[:ANALYSIS_KEY_HEX_DIGITS]


def render_key(
    output: str,
    video_fingerprint: str,
    source_fingerprints: Sequence[str],
    settings: SwapSettings,
    plan: ModelPlan,
) -> str:
    """The output location is part of the key, so two renders of one job never share
    segments; segments are named by frame range, so a new chunk size finds none of the old."""
    content = {
        "version": RENDER_KEY_VERSION,
        "output": output,
        "video": video_fingerprint,
        "sources": list(source_fingerprints),
        "settings": values_in_scope(settings, Scope.PIXELS),
        "models": plan.identities(PIXEL_ROLES),
        "analysis": analysis_key(settings, plan),
    }
    return content_digest(content)[:RENDER_KEY_HEX_DIGITS]


def chunk_name(chunk: Chunk) -> str:
    """Segments are named by their frame range inside the render's folder."""
    return f"frames-{chunk.start:08d}-{chunk.count:06d}"


def _plain(value: object) -> object:
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    return str(value)
