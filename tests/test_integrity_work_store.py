"""The work store (issue 18, case 8 and the acceptance's segment faults): segments and records
are private like cache files, and a segment whose bytes were flipped, truncated or deleted, or
whose record was damaged, is never assembled: it counts as missing and is rendered again."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from facefusion_ray.engine.segment_store import SegmentStore
from facefusion_ray.errors import MediaError
from facefusion_ray.pipeline.chunks import Chunk
from facefusion_ray.pipeline.swap_report import ChunkResult

CHUNKS = [Chunk(0, 0, 4), Chunk(1, 4, 4)]


def stored_segments(tmp_path: Path) -> tuple[SegmentStore, Path]:
    store = SegmentStore(str(tmp_path / "work"), "render-key")
    for chunk in CHUNKS:
        encoded = tmp_path / f"encoded-{chunk.index}.mp4"
        encoded.write_bytes(bytes(range(256)) * 8 + bytes([chunk.index]))
        store.put_segment(chunk, encoded, ChunkResult(chunk.index, 4, 4, 4, 0.1))
    return store, tmp_path / "work" / "render-key"


def test_segments_records_and_their_folders_are_private(tmp_path: Path) -> None:
    store, folder = stored_segments(tmp_path)
    store.record_published(str(tmp_path / "out.mp4"), {"bytes": 1, "sha256": "0" * 64}, {})
    files = [path for path in (tmp_path / "work").rglob("*") if path.is_file()]
    assert len(files) == 5
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in (folder, tmp_path / "work" / "done", tmp_path / "work"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "record"])
def test_a_damaged_segment_is_rendered_again_never_assembled(tmp_path: Path, damage: str) -> None:
    store, folder = stored_segments(tmp_path)
    assert set(store.finished(CHUNKS)) == {0, 1}
    segment = next(folder.glob("*.mp4"))
    payload = segment.read_bytes()
    if damage == "flip":
        segment.write_bytes(payload[:100] + bytes([payload[100] ^ 0xFF]) + payload[101:])
    elif damage == "truncate":
        segment.write_bytes(payload[:-1])
    elif damage == "delete":
        segment.unlink()
    else:
        segment.with_suffix(".json").write_text('{"frames": 4, "bytes": "x"}')
    assert len(store.finished(CHUNKS)) == 1
    with pytest.raises(MediaError), store.local_segments(CHUNKS):
        pass
