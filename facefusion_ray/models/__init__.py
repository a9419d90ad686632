"""The model zoo: manifest, preparation of pinned sources, and inference sessions."""

from facefusion_ray.models.manifest import (
    Manifest,
    ModelSpec,
    Preparation,
    TensorSpec,
    get_model_spec,
    load_manifest,
)
from facefusion_ray.models.sessions import CallStats, ModelSession
from facefusion_ray.models.store import (
    prepared_model_path,
    resolve_model_path,
    resolve_source_path,
)

__all__ = [
    "CallStats",
    "Manifest",
    "ModelSession",
    "ModelSpec",
    "Preparation",
    "TensorSpec",
    "get_model_spec",
    "load_manifest",
    "prepared_model_path",
    "resolve_model_path",
    "resolve_source_path",
]
