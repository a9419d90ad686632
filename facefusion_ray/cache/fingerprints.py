"""What identifies cached analysis: the analysis settings (key) and the video's content."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from facefusion_ray.assets.fetch import file_sha256
from facefusion_ray.atomic_files import write_bytes_atomically
from facefusion_ray.cache.schema import SCHEMA_VERSION
from facefusion_ray.errors import SettingsError
from facefusion_ray.paths import cache_root

ANALYSIS_KEY_HEX_DIGITS = 20
_FINGERPRINT_INDEX_NAME = "video_fingerprints.json"
_FINGERPRINT_INDEX_LIMIT = 4096


@dataclass(frozen=True)
class AnalysisSettings:
    """Everything that changes per-frame analysis results, and nothing else (no swapper, masks
    or output options), so that those can change and still hit the cache."""

    detector_id: str
    detector_sha256: str
    detector_size: tuple[int, int]
    score_threshold: float
    nms_threshold: float
    angles: tuple[int, ...] = (0,)
    landmarker_id: str | None = None
    landmarker_sha256: str | None = None
    recognizer_id: str | None = None
    recognizer_sha256: str | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        for role in ("landmarker", "recognizer"):
            model_id = getattr(self, f"{role}_id")
            sha256 = getattr(self, f"{role}_sha256")
            if (model_id is None) != (sha256 is None):
                raise SettingsError(f"the {role} needs both an id and a sha256, or neither")
        if not self.detector_id or not self.detector_sha256:
            raise SettingsError("the detector needs an id and a sha256")

    def canonical_json(self) -> str:
        fields = dataclasses.asdict(self)
        fields["detector_size"] = [int(side) for side in self.detector_size]
        fields["angles"] = [int(angle) for angle in self.angles]
        fields["score_threshold"] = float(self.score_threshold)
        fields["nms_threshold"] = float(self.nms_threshold)
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    def analysis_key(self) -> str:
        digest = hashlib.sha256(self.canonical_json().encode()).hexdigest()
        return digest[:ANALYSIS_KEY_HEX_DIGITS]


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
