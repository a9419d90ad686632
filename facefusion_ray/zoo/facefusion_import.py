"""Import a FaceFusion model folder (`.assets/models/`) into a model store, downloading nothing.

FaceFusion keeps each model as `NAME.onnx` beside `NAME.hash`, the file's CRC32 as 8 hex digits.
Every file whose name is a manifest model's source file is checked against its `.hash` (and
against the SHA-256 the manifest or the store's lock file pins, if any), copied into the store,
pinned in the lock file as imported, and prepared like a pulled model. Files the manifest does
not know are skipped, files that fail a check are refused; both are reported by name. Importing
the same folder again changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from facefusion_ray.assets.fetch import file_sha256
from facefusion_ray.errors import ModelError
from facefusion_ray.zoo.lockfile import (
    CRC32,
    ORIGIN_IMPORTED,
    LockEntry,
    RecordedHash,
    file_crc32,
    parse_crc32_text,
    utc_timestamp,
)
from facefusion_ray.zoo.manifest import ModelSpec
from facefusion_ray.zoo.model_store import ModelStore

logger = logging.getLogger(__name__)

HASH_SUFFIX = ".hash"


@dataclass(frozen=True)
class ImportedModel:
    model_id: str
    file: str  # the file's name in the folder
    sha256: str
    changed: bool  # False: the store held this source, pinned as it is, already
    built: tuple[str, ...]  # prepared files built by this import


@dataclass(frozen=True)
class RefusedFile:
    file: str
    reason: str


@dataclass(frozen=True)
class FolderImport:
    folder: Path
    imported: tuple[ImportedModel, ...]
    skipped: tuple[str, ...]  # files no manifest model is published as
    refused: tuple[RefusedFile, ...]


def import_facefusion_folder(store: ModelStore, folder: Path) -> FolderImport:
    if not folder.is_dir():
        raise ModelError(f"{folder} is not a folder")
    by_file_name = _manifest_models_by_file_name(store)
    imported: list[ImportedModel] = []
    skipped: list[str] = []
    refused: list[RefusedFile] = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.suffix == HASH_SUFFIX:
            continue
        spec = by_file_name.get(path.name)
        if spec is None:
            skipped.append(path.name)
            continue
        try:
            imported.append(_import_model_file(store, spec, path))
        except ModelError as error:
            logger.error("refused %s: %s", path, error)
            refused.append(RefusedFile(path.name, str(error)))
    return FolderImport(folder, tuple(imported), tuple(skipped), tuple(refused))


def _manifest_models_by_file_name(store: ModelStore) -> dict[str, ModelSpec]:
    """Manifest models only: a registered private model is never imported over."""
    registered = store.registrations()
    return {
        spec.source.file: spec
        for model_id, spec in store.manifest.models.items()
        if model_id not in registered
    }


def _import_model_file(store: ModelStore, spec: ModelSpec, path: Path) -> ImportedModel:
    expected_crc32 = _published_crc32(path)
    actual_crc32 = file_crc32(path)
    if actual_crc32 != expected_crc32:
        raise ModelError(
            f"{path.name} has crc32 {actual_crc32}, but {_hash_file(path).name} says "
            f"{expected_crc32}; not imported"
        )
    sha256 = file_sha256(path)
    entry = LockEntry(
        file=spec.source.file,
        sha256=sha256,
        upstream_hash=RecordedHash(CRC32, expected_crc32),
        pulled_from=str(path.resolve()),
        pulled_at=utc_timestamp(),
        origin=ORIGIN_IMPORTED,
    )
    changed = store.adopt_source(spec, path, entry)
    built = store.pull(spec.model_id).built
    return ImportedModel(spec.model_id, path.name, sha256, changed, built)


def _published_crc32(path: Path) -> str:
    hash_file = _hash_file(path)
    try:
        payload = hash_file.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{path.name} has no {hash_file.name} beside it; not imported") from None
    except OSError as error:
        raise ModelError(f"cannot read {hash_file}: {error}") from None
    value = parse_crc32_text(payload)
    if value is None:
        raise ModelError(f"{hash_file.name} does not hold a crc32 (8 hex digits); not imported")
    return value


def _hash_file(path: Path) -> Path:
    return path.with_suffix(HASH_SUFFIX)
