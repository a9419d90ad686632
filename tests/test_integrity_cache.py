"""Fault injection into analysis-cache chunks (issue 18, case 1): a damaged chunk is detected on
every read, by lookups, `cache verify` and `cache stats`, logged with its location and replaced;
its content is never used. One engine-level render proves the whole loop."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from facefusion_ray.analysis.face import Face
from facefusion_ray.cache import AnalysisCache, FrameAnalysis
from facefusion_ray.cache import analysis_chunks as cache_store
from facefusion_ray.cache.operations import cache_stats, verify
from facefusion_ray.cache.schema import InvalidAnalysisData
from facefusion_ray.engine.driver import run_swap
from facefusion_ray.settings import SwapSettings
from facefusion_ray.storage import put_bytes_atomic, read_bytes
from tests.media_checks import decoded_frames
from tests.test_analysis_cache import KEY, VIDEO, assert_same_records, make_records

FRAME_SIZE = (64, 36)
# Offsets spread over the whole file, and every byte of the footer (metadata and schema).
SPREAD_OFFSETS = 300
FOOTER_BYTES = 600


def flipped(payload: bytes, offset: int) -> bytes:
    damaged = bytearray(payload)
    damaged[offset] ^= 0xFF
    return bytes(damaged)


def deleted(payload: bytes, offset: int) -> bytes:
    return payload[:offset] + payload[offset + 1 :]


def flip_offsets(size: int) -> list[int]:
    spread = np.linspace(0, size - 1, SPREAD_OFFSETS).astype(int)
    footer = range(max(0, size - FOOTER_BYTES), size)
    return sorted({*spread.tolist(), *footer})


def read_without_page_checksums(payload: bytes) -> pa.Table:
    try:
        return pq.read_table(pa.BufferReader(payload))
    except (pa.ArrowException, OSError, ValueError) as error:
        raise InvalidAnalysisData(type(error).__name__) from None


@pytest.mark.parametrize(
    ("damage", "page_checksums"),
    [(flipped, True), (flipped, False), (deleted, True)],
    ids=["flip-page_crc", "flip-content_sha256_only", "delete-page_crc"],
)
def test_a_byte_flipped_anywhere_in_a_chunk_is_detected_or_harmless(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    damage: Callable[[bytes, int], bytes],
    page_checksums: bool,
) -> None:
    if not page_checksums:  # the content checksum alone must be enough
        monkeypatch.setattr(cache_store, "parquet_to_table", read_without_page_checksums)
    cache = AnalysisCache(str(tmp_path / "cache"), access_update_interval_seconds=0)
    records = make_records(0, 16)
    path = cache.write(VIDEO, KEY, records, FRAME_SIZE)
    payload = read_bytes(cache.filesystem, path)
    (entry,) = cache.entries()
    detected = harmless = 0
    for offset in flip_offsets(len(payload)):
        put_bytes_atomic(cache.filesystem, damage(payload, offset), path)
        try:
            read = cache.read_entry(entry)
        except InvalidAnalysisData:
            detected += 1
            continue
        # Undetected damage must have left every value as written (e.g. a writer's name).
        assert_same_records(read, records)
        harmless += 1
    assert detected > 0.9 * (detected + harmless), (detected, harmless)


def test_a_damaged_chunk_is_a_logged_miss_then_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = AnalysisCache(str(tmp_path / "cache"), access_update_interval_seconds=0)
    records = make_records(0, 16)
    path = cache.write(VIDEO, KEY, records, FRAME_SIZE)
    payload = read_bytes(cache.filesystem, path)
    put_bytes_atomic(cache.filesystem, flipped(payload, len(payload) // 2), path)

    stats = cache_stats(cache)
    assert stats["entries"] == 1 and stats["bad_entries"] == 1
    assert stats["frames"] == 0 and stats["bad_frames"] == 16
    report = verify(cache)
    assert [bad for bad, _ in report.bad] == [path]
    with caplog.at_level(logging.WARNING, logger="facefusion_ray"):
        assert cache.lookup(VIDEO, KEY, 0, 16) is None
    assert f"removing bad chunk {path}" in caplog.text
    assert cache.entries() == []

    cache.write(VIDEO, KEY, records, FRAME_SIZE)
    assert_same_records(cache.lookup(VIDEO, KEY, 0, 16) or [], records)
    assert cache_stats(cache)["bad_entries"] == 0 and verify(cache).ok


def test_coordinates_beyond_the_frame_are_refused_even_with_a_valid_checksum(
    tmp_path: Path,
) -> None:
    cache = AnalysisCache(str(tmp_path / "cache"))
    records = make_records(0, 4)
    face = records[1].faces[0]
    wild = Face(
        bbox=np.array([1.3e20, 0, 10, 10], np.float32),
        score=face.score,
        landmarks_5=face.landmarks_5,
    )
    bad = [records[0], FrameAnalysis(1, records[1].frame_fingerprint, [wild]), *records[2:]]
    cache.write(VIDEO, KEY, bad, FRAME_SIZE)
    report = verify(cache)
    assert len(report.bad) == 1 and "bbox lies outside the 64x36 frame" in report.bad[0][1]
    assert cache.lookup(VIDEO, KEY, 0, 4) is None

    far = Face(
        bbox=np.array([200, 0, 210, 10], np.float32), score=0.9, landmarks_5=face.landmarks_5
    )
    cache.write(VIDEO, KEY, [records[0], FrameAnalysis(1, "f" * 64, [far])], FRAME_SIZE)
    assert "outside" in verify(cache).bad[0][1]
    nan_score = Face(bbox=face.bbox, score=float("nan"), landmarks_5=face.landmarks_5)
    cache.write(VIDEO, KEY, [FrameAnalysis(7, "e" * 64, [nan_score])], FRAME_SIZE)
    assert any("score holds values that are not finite" in why for _, why in verify(cache).bad)


def test_a_render_over_a_damaged_chunk_gives_the_undamaged_frames(
    sample_media, short_group_clip: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = SwapSettings(analysis_cache=str(tmp_path / "cache"))

    def render(name: str):
        return run_swap(
            [sample_media.source_tom_hanks],
            short_group_clip,
            tmp_path / name,
            settings,
            show_progress=False,
            sequential=True,
        )

    first = render("first.mp4")
    cache = AnalysisCache(settings.analysis_cache)
    (entry,) = cache.entries()
    payload = read_bytes(cache.filesystem, entry.path)
    # Ten bytes flipped in the middle of the chunk, as in the reproduction.
    damaged = bytearray(payload)
    middle = len(payload) // 2
    for offset in range(middle, middle + 10):
        damaged[offset] ^= 0x5A
    put_bytes_atomic(cache.filesystem, bytes(damaged), entry.path)

    with caplog.at_level(logging.WARNING, logger="facefusion_ray"):
        second = render("second.mp4")
    assert second.cache == {"hits": 0, "misses": 40}
    assert f"removing bad chunk {entry.path}" in caplog.text
    assert second.faces_swapped == first.faces_swapped
    for before, after in zip(
        decoded_frames(tmp_path / "first.mp4"), decoded_frames(tmp_path / "second.mp4"), strict=True
    ):
        np.testing.assert_array_equal(before, after)
    assert verify(cache).ok and cache.lookup(entry.video_fingerprint, entry.analysis_key, 0, 40)
