"""A video's identity for the analysis cache: the SHA-256 of its content, remembered per file."""

from __future__ import annotations

import json
from pathlib import Path

from filelock import FileLock

from facefusion_ray.assets.fetch import file_sha256
from facefusion_ray.atomic_files import write_bytes_atomically
from facefusion_ray.paths import cache_root

ANALYSIS_KEY_HEX_DIGITS = 20
_FINGERPRINT_INDEX_NAME = "video_fingerprints.json"
_FINGERPRINT_INDEX_LIMIT = 4096


def video_fingerprint(path: Path | str) -> str:
    """SHA-256 of the file's content, computed once per (absolute path, size, mtime_ns)."""
    resolved = Path(path).resolve()
    status = resolved.stat()
    index_folder = cache_root() / "fingerprints"
    index_folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    index_path = index_folder / _FINGERPRINT_INDEX_NAME
    with FileLock(str(index_path) + ".lock"):
        index = _read_index(index_path)
        remembered = index.get(str(resolved))
        if remembered and [remembered.get("size"), remembered.get("mtime_ns")] == [
            status.st_size,
            status.st_mtime_ns,
        ]:
            return str(remembered["sha256"])
    fingerprint = file_sha256(resolved)
    with FileLock(str(index_path) + ".lock"):
        index = _read_index(index_path)
        index.pop(str(resolved), None)
        index[str(resolved)] = {
            "size": status.st_size,
            "mtime_ns": status.st_mtime_ns,
            "sha256": fingerprint,
        }
        while len(index) > _FINGERPRINT_INDEX_LIMIT:
            index.pop(next(iter(index)))
        _write_index(index_path, index)
    return fingerprint


def _read_index(path: Path) -> dict[str, dict[str, object]]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _write_index(path: Path, index: dict[str, dict[str, object]]) -> None:
    write_bytes_atomically(path, json.dumps(index).encode("utf-8"))
