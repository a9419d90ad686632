"""What the pipeline needs of a model besides running it, read once when the model is prepared.

`NAME.meta.npz` beside a prepared file `NAME` holds its input and output signatures (names,
element types, shapes with symbolic dimensions as names) and, for swappers that carry one, the
emap: InSwapper's 512x512 identity projection, stored as the graph's last initializer and used
by no node. The model store pins the metadata file by SHA-256 like the model, so no render
process ever parses a whole model file outside ONNX Runtime to get them.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facefusion_ray.atomic_files import write_bytes_atomically
from facefusion_ray.errors import ModelError

if TYPE_CHECKING:
    import onnx

METADATA_SUFFIX = ".meta.npz"
EMAP_SIZE = 512

Dimension = int | str


@dataclass(frozen=True)
class TensorSignature:
    name: str
    element_type: str  # onnx's name, e.g. "FLOAT"
    shape: tuple[Dimension, ...]


@dataclass(frozen=True)
class ModelMetadata:
    inputs: tuple[TensorSignature, ...]
    outputs: tuple[TensorSignature, ...]
    emap: np.ndarray | None = None  # (512, 512) float32, read-only


def metadata_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + METADATA_SUFFIX)


def extract_metadata(model: onnx.ModelProto) -> ModelMetadata:
    """The signatures and emap of a loaded model (weights still inline)."""
    graph = model.graph
    initializers = {initializer.name for initializer in graph.initializer}
    inputs = tuple(_signature(value) for value in graph.input if value.name not in initializers)
    return ModelMetadata(inputs, tuple(_signature(value) for value in graph.output), _emap(graph))


def _signature(value: onnx.ValueInfoProto) -> TensorSignature:
    tensor = value.type.tensor_type
    shape = tuple(
        dimension.dim_param if dimension.dim_param else int(dimension.dim_value)
        for dimension in tensor.shape.dim
    )
    import onnx  # only where models are prepared: render processes read the metadata file

    return TensorSignature(value.name, onnx.TensorProto.DataType.Name(tensor.elem_type), shape)


def _emap(graph: onnx.GraphProto) -> np.ndarray | None:
    """The last initializer when it is a 512x512 matrix that no node reads (FaceFusion reads
    the emap as the last initializer)."""
    if not graph.initializer:
        return None
    last = graph.initializer[-1]
    if tuple(last.dims) != (EMAP_SIZE, EMAP_SIZE):
        return None
    if any(last.name in node.input for node in graph.node):
        return None
    from onnx import numpy_helper

    return numpy_helper.to_array(last).astype(np.float32)


def write_metadata(metadata: ModelMetadata, path: Path) -> None:
    signature = {
        "inputs": [_signature_json(tensor) for tensor in metadata.inputs],
        "outputs": [_signature_json(tensor) for tensor in metadata.outputs],
    }
    arrays: dict[str, np.ndarray] = {"signature": np.array(json.dumps(signature))}
    if metadata.emap is not None:
        arrays["emap"] = metadata.emap
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes_atomically(path, buffer.getvalue())


def _signature_json(tensor: TensorSignature) -> dict[str, object]:
    return {"name": tensor.name, "element_type": tensor.element_type, "shape": list(tensor.shape)}


def read_metadata(model_path: Path) -> ModelMetadata:
    """The metadata beside `model_path`, read once per file. ModelError when there is none."""
    return _read_cached(str(Path(model_path).resolve()))


@lru_cache(maxsize=8)
def _read_cached(model_path: str) -> ModelMetadata:
    path = metadata_path(Path(model_path))
    try:
        with np.load(path, allow_pickle=False) as arrays:
            signature = json.loads(str(arrays["signature"]))
            emap = np.array(arrays["emap"], dtype=np.float32) if "emap" in arrays else None
    except FileNotFoundError:
        raise ModelError(
            f"{Path(model_path).name} has no {path.name} beside it: prepare it through the "
            "model store (`facefusion-ray models pull`)"
        ) from None
    except (ValueError, KeyError, OSError) as error:
        raise ModelError(f"{path.name} cannot be read: {error}") from None
    if emap is not None:
        emap.setflags(write=False)
    return ModelMetadata(
        tuple(_tensor(entry) for entry in signature["inputs"]),
        tuple(_tensor(entry) for entry in signature["outputs"]),
        emap,
    )


def _tensor(entry: dict[str, object]) -> TensorSignature:
    shape = entry["shape"]
    assert isinstance(shape, list)
    return TensorSignature(str(entry["name"]), str(entry["element_type"]), tuple(shape))
