"""`models.lock.json` at the model store's root: the SHA-256 of every source the store holds.

    {"<model_id>": {"file": ..., "sha256": ..., "upstream_hash": {"algorithm", "value"} | null,
                    "pulled_from": ..., "pulled_at": ..., "origin": "pulled"|"imported"|"added",
                    "prepared": {"<prepared file name>": "<sha256>", ...}}}

`prepared` pins every prepared file built from the source when it was built: the store's copies
and every node's copy are checked against it, never against the `.sha256` sidecar beside them
(a file replaced together with its sidecar would pass that check).

A manifest entry with a SHA-256 is verified against it and merely recorded here. An entry whose
`sha256` is null is pinned at its first pull: the download must match the CRC32 that the
upstream publishes in a FaceFusion-style `.hash` file (8 hex digits), and its SHA-256 is then
recorded; every later download and every node verifies against the recorded value.

Updates are read-modify-write. A local store serialises writers with a file lock beside the lock
file. An object store has no lock: the document is written with one PUT and read back, and the
merge is repeated when another writer's PUT replaced ours. Accepted race: a writer whose PUT
lands after ours, but which read the document before it, can still drop our entry after we
confirmed it. A dropped entry of a manifest-pinned model is re-recorded at the next pull; a
dropped first pin is pinned again at the next pull, behind the same CRC32 check.

`origin` says how the source came into the store: pulled from its locations, imported from a
FaceFusion model folder (`pulled_from` is then the imported file), or added as a private model.
Entries written before `origin` existed read as pulled.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import fsspec
from filelock import FileLock

# fetch.py keeps its downloaders private; a first pin needs them without a known SHA-256.
from facefusion_ray.assets.fetch import (
    SourceUnavailable,
    download_unpinned,
)
from facefusion_ray.errors import ModelError
from facefusion_ray.storage import (
    ObjectNotFoundError,
    StorageError,
    describe_location,
    is_local,
    join,
    put_bytes_atomic,
    read_bytes,
)
from facefusion_ray.zoo.manifest import ModelSource, UpstreamHash

logger = logging.getLogger(__name__)

LOCK_FILE_NAME = "models.lock.json"
CRC32 = "crc32"
ORIGIN_PULLED = "pulled"
ORIGIN_IMPORTED = "imported"
ORIGIN_ADDED = "added"
_CONFIRM_ATTEMPTS = 4
_CRC32_TEXT = re.compile(r"[0-9a-f]{8}")
_SHA256_TEXT = re.compile(r"[0-9a-f]{64}")
_Entry = TypeVar("_Entry")


@dataclass(frozen=True)
class RecordedHash:
    """An upstream-published digest that the first download matched."""

    algorithm: str
    value: str


@dataclass(frozen=True)
class LockEntry:
    file: str
    sha256: str
    upstream_hash: RecordedHash | None
    pulled_from: str
    pulled_at: str
    origin: str = ORIGIN_PULLED
    prepared: tuple[tuple[str, str], ...] = ()  # (prepared file name, sha256), sorted

    def prepared_sha256(self, name: str) -> str | None:
        return dict(self.prepared).get(name)

    def with_prepared(self, name: str, sha256: str) -> LockEntry:
        pins = {**dict(self.prepared), name: sha256}
        return dataclasses.replace(self, prepared=tuple(sorted(pins.items())))

    def to_json(self) -> dict[str, Any]:
        upstream = self.upstream_hash
        document = {
            "file": self.file,
            "sha256": self.sha256,
            "upstream_hash": None
            if upstream is None
            else {"algorithm": upstream.algorithm, "value": upstream.value},
            "pulled_from": self.pulled_from,
            "pulled_at": self.pulled_at,
            "origin": self.origin,
        }
        if self.prepared:
            document["prepared"] = dict(self.prepared)
        return document


def lock_file_path(root: str) -> str:
    return join(root, LOCK_FILE_NAME)


def utc_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_lock(filesystem: fsspec.AbstractFileSystem, root: str) -> dict[str, LockEntry]:
    """The entries of the store's lock file; {} when the store has none yet."""
    return read_store_document(
        filesystem,
        lock_file_path(root),
        lambda model_id, entry: _parse_entry(entry),
        "lock file {} is damaged ({}); restore it or delete it so that the next pull records "
        "the models again",
    )


def read_store_document(
    filesystem: fsspec.AbstractFileSystem,
    path: str,
    parse_entry: Callable[[str, Any], _Entry],
    damaged: str,
) -> dict[str, _Entry]:
    """A JSON object of entries by model id kept in a store; {} when it does not exist.

    `damaged` is the message (with `{}` for the location and the reason) of the ModelError
    raised when the document cannot be parsed.
    """
    try:
        payload = read_bytes(filesystem, path)
    except ObjectNotFoundError:
        return {}
    try:
        document = json.loads(payload)
        if not isinstance(document, dict):
            raise ValueError("the document is not an object")
        return {model_id: parse_entry(model_id, entry) for model_id, entry in document.items()}
    except (ValueError, TypeError, KeyError) as error:
        raise ModelError(damaged.format(describe_location(filesystem, path), error)) from None


def record_lock_entry(
    filesystem: fsspec.AbstractFileSystem, root: str, model_id: str, entry: LockEntry
) -> None:
    """Add or replace one model's entry, keeping every other entry."""
    record_document_entry(filesystem, root, LOCK_FILE_NAME, model_id, entry, read_lock, _write_lock)


def record_document_entry(
    filesystem: fsspec.AbstractFileSystem,
    root: str,
    file_name: str,
    model_id: str,
    entry: _Entry,
    read: Callable[[fsspec.AbstractFileSystem, str], dict[str, _Entry]],
    write: Callable[[fsspec.AbstractFileSystem, str, dict[str, _Entry]], None],
) -> None:
    """Read-modify-write one entry of a JSON document at the store's root (see the module
    doc for how concurrent writers are handled); `read` and `write` know its format."""
    path = join(root, file_name)
    if is_local(filesystem):
        Path(root).mkdir(parents=True, exist_ok=True)
        with FileLock(str(Path(root) / f".{file_name}.lock")):
            write(filesystem, path, {**read(filesystem, root), model_id: entry})
        return
    for attempt in range(1, _CONFIRM_ATTEMPTS + 1):
        write(filesystem, path, {**read(filesystem, root), model_id: entry})
        if read(filesystem, root).get(model_id) == entry:
            return
        logger.warning(
            "%s was rewritten by another writer; merging entry %s again (attempt %d)",
            describe_location(filesystem, path),
            model_id,
            attempt,
        )
        time.sleep(random.uniform(0.05, 0.25) * attempt)
    raise StorageError(
        f"could not record {model_id} in {describe_location(filesystem, path)}: "
        f"{_CONFIRM_ATTEMPTS} concurrent rewrites in a row"
    )


def pin_first_download(model_id: str, source: ModelSource, destination: Path) -> LockEntry:
    """Download a source that has no SHA-256 yet into `destination`, checked against the
    upstream CRC32, and return the lock entry that pins it."""
    if source.upstream_hash is None:
        raise ModelError(
            f"model {model_id} has neither a sha256 nor an upstream hash in the manifest: "
            "there is nothing to verify its first download against"
        )
    expected = fetch_upstream_hash(model_id, source.upstream_hash, destination.parent)
    failures: list[str] = []
    for location in source.locations:
        try:
            sha256 = download_unpinned(location, destination)
        except SourceUnavailable as error:
            logger.warning("could not fetch %s from %s: %s", model_id, location.describe(), error)
            failures.append(f"{location.describe()} ({error})")
            continue
        actual = file_crc32(destination)
        if actual != expected.value:
            message = (
                f"model {model_id}: {source.file} from {location.describe()} has crc32 {actual} "
                f"but its upstream .hash says {expected.value}; refusing to pin it"
            )
            logger.error(message)
            failures.append(message)
            continue
        logger.info("pinned %s (%s) at sha256 %s", model_id, location.describe(), sha256)
        return LockEntry(
            file=source.file,
            sha256=sha256,
            upstream_hash=expected,
            pulled_from=location.describe(),
            pulled_at=utc_timestamp(),
        )
    destination.unlink(missing_ok=True)
    mismatches = [failure for failure in failures if "refusing to pin" in failure]
    if mismatches:
        raise ModelError(mismatches[0])
    raise ModelError(f"no source reachable for model {model_id}; tried: {'; '.join(failures)}")


def fetch_upstream_hash(model_id: str, upstream: UpstreamHash, scratch: Path) -> RecordedHash:
    """The digest the upstream publishes for the source, from the first readable location."""
    if upstream.algorithm != CRC32:
        raise ModelError(
            f"model {model_id}: upstream hash algorithm {upstream.algorithm!r} is not {CRC32!r}"
        )
    failures: list[str] = []
    scratch.mkdir(parents=True, exist_ok=True)
    for location in upstream.sources:
        with tempfile.TemporaryDirectory(prefix=".hash-", dir=scratch) as folder:
            hash_file = Path(folder) / "upstream.hash"
            try:
                download_unpinned(location, hash_file)
            except SourceUnavailable as error:
                failures.append(f"{location.describe()} ({error})")
                continue
            value = parse_crc32_text(hash_file.read_bytes())
        if value is not None:
            return RecordedHash(algorithm=CRC32, value=value)
        failures.append(f"{location.describe()} (not 8 hex digits)")
    raise ModelError(f"cannot read the upstream crc32 of model {model_id}: {'; '.join(failures)}")


def parse_crc32_text(payload: bytes) -> str | None:
    """The CRC32 in a FaceFusion `.hash` file (8 hex digits), lowercased; None if it holds
    anything else."""
    text = payload[:64].decode("ascii", errors="replace").strip().lower()
    return text if _CRC32_TEXT.fullmatch(text) else None


def file_crc32(path: Path) -> str:
    """CRC32 as FaceFusion's `.hash` files write it: 8 lowercase hex digits."""
    checksum = 0
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1024 * 1024), b""):
            checksum = zlib.crc32(block, checksum)
    return f"{checksum:08x}"


def _write_lock(
    filesystem: fsspec.AbstractFileSystem, path: str, entries: dict[str, LockEntry]
) -> None:
    document = {model_id: entries[model_id].to_json() for model_id in sorted(entries)}
    payload = (json.dumps(document, indent=2) + "\n").encode("utf-8")
    put_bytes_atomic(filesystem, payload, path)


def _parse_entry(entry: Any) -> LockEntry:
    if not isinstance(entry, dict):
        raise ValueError("an entry is not an object")
    upstream = entry.get("upstream_hash")
    sha256 = str(entry["sha256"])
    if not _SHA256_TEXT.fullmatch(sha256):
        raise ValueError(f"sha256 {sha256!r} is not 64 lowercase hex digits")
    return LockEntry(
        file=str(entry["file"]),
        sha256=sha256,
        upstream_hash=None
        if upstream is None
        else RecordedHash(algorithm=str(upstream["algorithm"]), value=str(upstream["value"])),
        pulled_from=str(entry.get("pulled_from", "")),
        pulled_at=str(entry.get("pulled_at", "")),
        origin=str(entry.get("origin", ORIGIN_PULLED)),
        prepared=_parse_prepared(entry.get("prepared", {})),
    )


def _parse_prepared(pins: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(pins, dict):
        raise ValueError("'prepared' is not an object")
    for name, sha256 in pins.items():
        if not isinstance(sha256, str) or not _SHA256_TEXT.fullmatch(sha256):
            raise ValueError(f"prepared {name!r}: sha256 {sha256!r} is not 64 lowercase hex digits")
    return tuple(sorted((str(name), sha256) for name, sha256 in pins.items()))
