"""`models add`: register private weights in a store under a new id, with the contract of a
manifest model, pinned by the SHA-256 of the file given.

The file (a local path, or a file:// or http(s):// URL) must have the graph inputs and outputs
of the model it is registered like. It is copied into the store, recorded in the store's
registry and lock file, and prepared like a pulled model. Adding the same file again changes
nothing; a different file under a registered id is refused, so the id always means the same
bytes on every node.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from facefusion_ray.assets.fetch import SourceUnavailable, UrlSource, download_unpinned
from facefusion_ray.errors import ModelError
from facefusion_ray.zoo.lockfile import ORIGIN_ADDED, LockEntry, utc_timestamp
from facefusion_ray.zoo.manifest import ModelSpec
from facefusion_ray.zoo.model_store import ModelStore
from facefusion_ray.zoo.registry import Registration, check_model_id, registered_spec

_URL_SCHEMES = ("file", "http", "https")


@dataclass(frozen=True)
class AddResult:
    model_id: str
    like: str
    sha256: str
    changed: bool  # False: the store held this registration and its file already
    built: tuple[str, ...]  # prepared files built by this call


def add_private_model(store: ModelStore, model_id: str, file_or_url: str, like: str) -> AddResult:
    check_model_id(model_id)
    registrations = store.registrations()
    manifest = store.manifest
    if model_id in manifest.models and model_id not in registrations:
        raise ModelError(f"{model_id} is a manifest model; register the weights under a new id")
    like_spec = manifest.model(like)
    if like in registrations:
        raise ModelError(f"--like {like} is a private model; name the manifest model it follows")
    location = _location_url(file_or_url)
    file_name = _file_name(location, model_id)
    with tempfile.TemporaryDirectory(prefix="facefusion-ray-add-") as folder:
        local_file = Path(folder) / file_name
        try:
            sha256 = download_unpinned(UrlSource(location), local_file)
        except SourceUnavailable as error:
            raise ModelError(f"cannot read {file_or_url}: {error}") from None
        existing = registrations.get(model_id)
        if existing is not None and (existing.sha256, existing.like) != (sha256, like):
            raise ModelError(
                f"model {model_id} is registered like {existing.like} with sha256 "
                f"{existing.sha256} (from {existing.location}); {file_or_url} is like {like} "
                f"with sha256 {sha256}: register changed weights under a new id"
            )
        _check_contract(local_file, like_spec, file_or_url)
        registration = existing or Registration(
            model_id=model_id,
            like=like,
            file=file_name,
            sha256=sha256,
            location=location,
            added_at=utc_timestamp(),
        )
        entry = LockEntry(
            file=registration.file,
            sha256=sha256,
            upstream_hash=None,
            pulled_from=registration.location,
            pulled_at=registration.added_at,
            origin=ORIGIN_ADDED,
        )
        # Source object, then lock entry, then registration: whatever the registry names is
        # complete in the store.
        changed = store.adopt_source(registered_spec(registration, like_spec), local_file, entry)
        if existing is None:
            store.register(registration)
            changed = True
    built = store.pull(model_id).built
    return AddResult(model_id, like, sha256, changed, built)


def _location_url(file_or_url: str) -> str:
    scheme = urlparse(file_or_url).scheme.lower()
    if scheme in _URL_SCHEMES:
        return file_or_url
    if len(scheme) > 1:  # a one-letter scheme is a Windows drive
        raise ModelError(
            f"{file_or_url}: only local files and {', '.join(_URL_SCHEMES)} URLs can be added"
        )
    path = Path(file_or_url).expanduser()
    if not path.is_file():
        raise ModelError(f"{file_or_url} is not a file")
    return path.resolve().as_uri()


def _file_name(location: str, model_id: str) -> str:
    name = Path(unquote(urlparse(location).path)).name
    return name if name and not name.startswith(".") else f"{model_id}.onnx"


def _check_contract(path: Path, like: ModelSpec, shown_as: str) -> None:
    """The graph must have the tensors the manifest names for `like` (shapes may differ in
    batch or symbolic dimensions; preparation and the session check the rest)."""
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # onnx raises protobuf's DecodeError and others
        raise ModelError(f"{shown_as} is not an ONNX model: {error}") from None
    graph = model.graph
    initializers = {initializer.name for initializer in graph.initializer}
    inputs = {value.name for value in graph.input if value.name not in initializers}
    outputs = {value.name for value in graph.output}
    missing = [tensor.name for tensor in like.inputs if tensor.name not in inputs]
    missing += [tensor.name for tensor in like.outputs if tensor.name not in outputs]
    if missing:
        raise ModelError(
            f"{shown_as} does not have the tensors of {like.model_id}: missing {missing} "
            f"(it has inputs {sorted(inputs)}, outputs {sorted(outputs)})"
        )
