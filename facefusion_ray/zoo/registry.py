"""`models.added.json` at the model store's root: private models registered in that store.

    {"<model_id>": {"like": "<manifest model id>", "file": ..., "sha256": ...,
                    "location": "<file:// or http(s):// URL it was added from>", "added_at": ...}}

A registration gives private weights (a studio's fine-tuned swapper, say) their own model id and
the contract of an existing manifest model: tensors, template, normalisation, parameters and
preparation recipes. The weights are pinned by the SHA-256 of the file that was added. A store
merges its registrations into the manifest it is opened with, so every job that names the store
can select a registered model wherever a model id is accepted.

Writers merge entries like the lock file's (`lockfile.record_document_entry`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import fsspec

from facefusion_ray.assets.fetch import UrlSource
from facefusion_ray.errors import ModelError
from facefusion_ray.storage import (
    join,
    put_bytes_atomic,
)
from facefusion_ray.zoo.lockfile import read_store_document, record_document_entry
from facefusion_ray.zoo.manifest import Manifest, ModelSource, ModelSpec

logger = logging.getLogger(__name__)

REGISTRY_FILE_NAME = "models.added.json"
PRIVATE_VENDOR = "private"
# The id becomes a folder name in the store and a CLI value; "classic" is the weights-free swapper.
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_RESERVED_IDS = frozenset({"classic"})
_SHA256_TEXT = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Registration:
    model_id: str
    like: str  # the manifest model whose contract the weights follow
    file: str  # the source's file name in the store
    sha256: str
    location: str  # where the file was added from, as a URL
    added_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "like": self.like,
            "file": self.file,
            "sha256": self.sha256,
            "location": self.location,
            "added_at": self.added_at,
        }


def is_usable_model_id(model_id: str) -> bool:
    return bool(_MODEL_ID.fullmatch(model_id)) and model_id not in _RESERVED_IDS


def check_model_id(model_id: str) -> None:
    if not is_usable_model_id(model_id):
        raise ModelError(
            f"model id {model_id!r} is not usable: letters, digits, '.', '_' and '-' (up to 64, "
            f"not starting with a punctuation mark), and not {', '.join(sorted(_RESERVED_IDS))}"
        )


def registry_path(root: str) -> str:
    return join(root, REGISTRY_FILE_NAME)


def read_registrations(filesystem: fsspec.AbstractFileSystem, root: str) -> dict[str, Registration]:
    """The store's registrations; {} when it has none."""
    return read_store_document(
        filesystem,
        registry_path(root),
        _parse_registration,
        "model registry {} is damaged ({}); restore it, or delete it and add the private "
        "models again",
    )


def record_registration(
    filesystem: fsspec.AbstractFileSystem, root: str, registration: Registration
) -> None:
    record_document_entry(
        filesystem,
        root,
        REGISTRY_FILE_NAME,
        registration.model_id,
        registration,
        read_registrations,
        _write_registrations,
    )


def registered_spec(registration: Registration, like: ModelSpec) -> ModelSpec:
    """`like`'s contract and preparation, with the registered weights as its source.

    An upstream FP16 file of `like` (`fp16_model`) holds other weights, so it is dropped; the
    registered model gets the own variants `like` declares, as a pulled `like` does.
    """
    return dataclasses.replace(
        like,
        model_id=registration.model_id,
        description=f"private weights registered like {like.model_id}",
        vendor=PRIVATE_VENDOR,
        license=PRIVATE_VENDOR,
        source=ModelSource(
            file=registration.file,
            sha256=registration.sha256,
            locations=(UrlSource(registration.location),),
            upstream_hash=None,
        ),
        fp16_model=None,
    )


def with_registrations(
    manifest: Manifest, registrations: Mapping[str, Registration], where: str
) -> Manifest:
    """`manifest` plus the registered models; unchanged when there are none. Merging a
    manifest that already holds the same registrations is a no-op."""
    added: dict[str, ModelSpec] = {}
    for model_id, registration in registrations.items():
        like = manifest.models.get(registration.like)
        if like is None:
            # Only jobs that select this model need it; the others must still run.
            logger.warning(
                "%s: %s is registered like %s, which this manifest does not have; skipping it",
                where,
                model_id,
                registration.like,
            )
            continue
        spec = registered_spec(registration, like)
        existing = manifest.models.get(model_id)
        if existing is not None and existing != spec:
            raise ModelError(
                f"{where} registers {model_id}, which the manifest {manifest.path} also defines; "
                "remove the registration and add the weights under another id"
            )
        added[model_id] = spec
    if not added:
        return manifest
    return Manifest(path=manifest.path, models=MappingProxyType({**manifest.models, **added}))


def _write_registrations(
    filesystem: fsspec.AbstractFileSystem, path: str, entries: dict[str, Registration]
) -> None:
    document = {model_id: entries[model_id].to_json() for model_id in sorted(entries)}
    put_bytes_atomic(filesystem, (json.dumps(document, indent=2) + "\n").encode("utf-8"), path)


def _parse_registration(model_id: str, entry: Any) -> Registration:
    if not isinstance(entry, dict):
        raise ValueError(f"entry {model_id} is not an object")
    if not is_usable_model_id(model_id):
        raise ValueError(f"{model_id!r} is not a usable model id")
    sha256 = str(entry["sha256"])
    if not _SHA256_TEXT.fullmatch(sha256):
        raise ValueError(f"entry {model_id}: sha256 {sha256!r} is not 64 lowercase hex digits")
    return Registration(
        model_id=model_id,
        like=str(entry["like"]),
        file=str(entry["file"]),
        sha256=sha256,
        location=str(entry["location"]),
        added_at=str(entry.get("added_at", "")),
    )
