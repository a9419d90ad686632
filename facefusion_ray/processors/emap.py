"""InSwapper's identity projection: the emap matrix stored in the model file, and the latent.

InSwapper does not take an ArcFace embedding directly: the embedding is projected through a
512x512 matrix ("emap") that the published ONNX file carries as its last initializer, unused by
any node. FaceFusion divides the projection by the embedding's norm and does not normalise the
result again (InsightFace's own code does; the two latents differ in scale).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

EMAP_SIZE = 512


def read_emap(model_path: Path) -> np.ndarray:
    """The (512, 512) float32 emap of the InSwapper file at `model_path`, read once per file."""
    return _read_emap_cached(str(Path(model_path).resolve()))


@lru_cache(maxsize=4)
def _read_emap_cached(model_path: str) -> np.ndarray:
    model = onnx.load(model_path)
    if not model.graph.initializer:
        raise ValueError(f"{model_path} has no initializers, so no emap")
    emap = numpy_helper.to_array(model.graph.initializer[-1]).astype(np.float32)
    if emap.shape != (EMAP_SIZE, EMAP_SIZE):
        raise ValueError(
            f"{model_path}: last initializer has shape {emap.shape}, "
            f"expected an emap of ({EMAP_SIZE}, {EMAP_SIZE})"
        )
    emap.setflags(write=False)
    return emap


def inswapper_latent(raw_embedding: np.ndarray, emap: np.ndarray) -> np.ndarray:
    """(1, 512) float32: dot(e, emap) / ||e|| for the raw ArcFace embedding e."""
    embedding = np.asarray(raw_embedding, dtype=np.float64).reshape(1, -1)
    norm = float(np.linalg.norm(embedding))
    if norm == 0:
        raise ValueError("the source embedding is all zeros")
    return (embedding @ np.asarray(emap, dtype=np.float64) / norm).astype(np.float32)
