"""InSwapper's identity projection: the emap matrix stored in the model file, and the latent.

InSwapper does not take an ArcFace embedding directly: the embedding is projected through a
512x512 matrix ("emap") that the published ONNX file carries as its last initializer, unused by
any node. FaceFusion divides the projection by the embedding's norm and does not normalise the
result again (InsightFace's own code does; the two latents differ in scale). The emap is taken
from the model when it is prepared (zoo/model_metadata.py): rendering never parses the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facefusion_ray.zoo.model_metadata import read_metadata


def read_emap(model_path: Path) -> np.ndarray:
    """The (512, 512) float32 emap of the prepared InSwapper file at `model_path`, from the
    metadata stored beside it (read once per file)."""
    emap = read_metadata(model_path).emap
    if emap is None:
        raise ValueError(f"{Path(model_path).name} has no emap (a 512x512 last initializer)")
    return emap


def inswapper_latent(raw_embedding: np.ndarray, emap: np.ndarray) -> np.ndarray:
    """(1, 512) float32: dot(e, emap) / ||e|| for the raw ArcFace embedding e."""
    embedding = np.asarray(raw_embedding, dtype=np.float64).reshape(1, -1)
    norm = float(np.linalg.norm(embedding))
    if norm == 0:
        raise ValueError("the source embedding is all zeros")
    return (embedding @ np.asarray(emap, dtype=np.float64) / norm).astype(np.float32)
