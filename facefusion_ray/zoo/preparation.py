"""Versioned recipes that turn a pinned source ONNX file into the file a session loads.

`dequantize_to_fp32` exists for the int8 block-quantised OpenCV Zoo builds. It drops graph
inputs that are really initializers (or unread), removes the `block_size` attribute that
onnxruntime rejects on per-tensor DequantizeLinear, folds every DequantizeLinear (and the Reshape
after it) of constant weights into plain FP32 initializers, rewrites PRelu into faster
equivalent ops and removes what is left unused. Raise a recipe's version whenever its output
changes: the recipe id and version are part of the prepared file's cache name.

`as_published` is for sources without defects. `float16` is a variant recipe, applied after a
model's base recipe (`write_prepared_variant`). `make_spatial_dims_symbolic` is an optional step
for models whose manifest entry allows other input sizes (`symbolic_spatial`).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facefusion_ray.atomic_files import write_bytes_atomically
from facefusion_ray.errors import ModelError
from facefusion_ray.zoo.model_metadata import extract_metadata, metadata_path, write_metadata

if TYPE_CHECKING:
    import onnx

# onnx (and the ml_dtypes it loads) costs ~0.5 s of CPU to import; every process that reads the
# manifest would pay it, while only preparing a model needs it. Recipes name their transform in
# this module, which imports onnx, and resolve it when a model is prepared.
_REWRITES_MODULE = "facefusion_ray.zoo.graph_rewrites"

logger = logging.getLogger(__name__)

# onnxruntime 1.31 rejects the IR version 14 that onnx 1.23 writes by default.
MAX_IR_VERSION = 10
SIDECAR_SUFFIX = ".sha256"
# Weights of a prepared model this large go to `NAME.data` beside it: ONNX Runtime maps such a
# file into memory instead of holding the model's bytes and a copy of its weights while the
# session starts (a 683 MB swapper: 1.54 GB peak inline, 0.86 GB with the weights beside it).
EXTERNAL_WEIGHTS_MIN_BYTES = 64 * 2**20
WEIGHTS_SUFFIX = ".data"
# External tensors smaller than this stay in the graph file.
_EXTERNAL_TENSOR_MIN_BYTES = 1024


@dataclass(frozen=True)
class Recipe:
    recipe_id: str
    version: int
    transform_name: str  # a function of zoo/graph_rewrites.py

    @property
    def transform(self) -> Callable[[onnx.ModelProto], None]:
        transform: Callable[[onnx.ModelProto], None] = getattr(
            importlib.import_module(_REWRITES_MODULE), self.transform_name
        )
        return transform


RECIPES: dict[str, Recipe] = {
    recipe.recipe_id: recipe
    for recipe in (
        Recipe("dequantize_to_fp32", 1, "dequantize_to_fp32"),
        Recipe("repair_quantized_graph", 1, "repair_quantized_graph"),
        Recipe("passthrough", 1, "keep_graph"),
        Recipe("as_published", 1, "keep_graph"),
        Recipe("float16", 1, "convert_to_float16"),
    )
}


def get_recipe(recipe_id: str, version: int) -> Recipe:
    recipe = RECIPES.get(recipe_id)
    if recipe is None:
        raise ModelError(f"unknown preparation recipe {recipe_id!r}; known: {sorted(RECIPES)}")
    if recipe.version != version:
        raise ModelError(
            f"manifest asks for recipe {recipe_id} r{version} but this code has r{recipe.version}"
        )
    return recipe


def write_prepared_model(
    source: Path, destination: Path, recipe: Recipe, *, symbolic_spatial: bool = False
) -> str:
    """Prepare `source` into `destination` atomically, with a `.sha256` sidecar; returns it.

    `symbolic_spatial` (the manifest's per-model parameter of that name) runs
    `make_spatial_dims_symbolic` after the recipe; callers must keep it in the cache name.
    """
    model = _prepare(source, (recipe,), symbolic_spatial=symbolic_spatial)
    return _write_prepared(model, source, destination, (recipe,))


def write_prepared_variant(
    source: Path,
    destination: Path,
    base: Recipe,
    variant: Recipe,
    *,
    symbolic_spatial: bool = False,
) -> str:
    """Like `write_prepared_model`, with the `variant` recipe (e.g. float16) applied last."""
    model = _prepare(source, (base, variant), symbolic_spatial=symbolic_spatial)
    return _write_prepared(model, source, destination, (base, variant))


def _prepare(
    source: Path, recipes: tuple[Recipe, ...], *, symbolic_spatial: bool
) -> onnx.ModelProto:
    import onnx

    from facefusion_ray.zoo.graph_rewrites import make_spatial_dims_symbolic

    steps = "+".join(recipe.recipe_id for recipe in recipes)
    try:
        model = onnx.load(str(source))
        recipes[0].transform(model)
        if symbolic_spatial:
            make_spatial_dims_symbolic(model)
        for recipe in recipes[1:]:
            recipe.transform(model)
        required = onnx.helper.find_min_ir_version_for(list(model.opset_import))
        model.ir_version = min(max(model.ir_version, required), MAX_IR_VERSION)
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise ModelError(f"{source.name} failed recipe {steps}: {first_line}") from error
    return model


def _write_prepared(
    model: onnx.ModelProto, source: Path, destination: Path, recipes: tuple[Recipe, ...]
) -> str:
    """Write the prepared graph, its metadata and (for a large model) its weights beside it;
    returns the graph file's SHA-256 (the others are pinned by the store)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    write_metadata(extract_metadata(model), metadata_path(destination))
    weights = weights_path(destination)
    weights.unlink(missing_ok=True)
    if model.ByteSize() >= EXTERNAL_WEIGHTS_MIN_BYTES:
        _write_weights_beside(model, destination)
    payload = model.SerializeToString()
    digest = hashlib.sha256(payload).hexdigest()
    write_bytes_atomically(destination, payload)
    write_bytes_atomically(sidecar_path(destination), f"{digest}  {destination.name}\n".encode())
    logger.info(
        "prepared %s with %s into %s",
        source.name,
        " then ".join(f"{recipe.recipe_id} r{recipe.version}" for recipe in recipes),
        destination,
    )
    return digest


def _write_weights_beside(model: onnx.ModelProto, destination: Path) -> None:
    """Move the model's tensors into `weights_path(destination)` (atomically); the graph keeps
    their file name, offsets and lengths."""
    import onnx
    from onnx.external_data_helper import convert_model_to_external_data

    weights = weights_path(destination)
    convert_model_to_external_data(
        model,
        all_tensors_to_one_file=True,
        location=weights.name,
        size_threshold=_EXTERNAL_TENSOR_MIN_BYTES,
    )
    # Saving writes the tensors out and leaves only their references in `model`.
    with tempfile.TemporaryDirectory(prefix=".weights-", dir=destination.parent) as folder:
        onnx.save_model(model, str(Path(folder) / destination.name))
        os.replace(Path(folder) / weights.name, weights)


def companion_paths(prepared: Path) -> list[Path]:
    """The files that belong to a prepared file: its metadata, and its weights if it has them
    beside it."""
    weights = weights_path(prepared)
    return [metadata_path(prepared), *([weights] if weights.exists() else [])]


def weights_path(prepared: Path) -> Path:
    return prepared.with_name(prepared.name + WEIGHTS_SUFFIX)


def sidecar_path(prepared: Path) -> Path:
    return prepared.with_name(prepared.name + SIDECAR_SUFFIX)
