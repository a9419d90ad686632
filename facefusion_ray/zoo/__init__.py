"""The model zoo: the manifest, pinned sources, the store of prepared models, imports."""

from facefusion_ray.zoo.manifest import (
    Manifest,
    ModelSpec,
    Preparation,
    TensorSpec,
    get_model_spec,
    load_manifest,
)
from facefusion_ray.zoo.model_store import (
    prepared_model_path,
    resolve_model_path,
    resolve_source_path,
)

__all__ = [
    "Manifest",
    "ModelSpec",
    "Preparation",
    "TensorSpec",
    "get_model_spec",
    "load_manifest",
    "prepared_model_path",
    "resolve_model_path",
    "resolve_source_path",
]
