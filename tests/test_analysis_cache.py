"""The analysis cache on a local folder and on a real S3 server (SeaweedFS): round trip, lookups
across chunk sizes, analysis keys, concurrent writers, bad files, LRU pruning, the operations and
the `cache` commands, file permissions and credential redaction."""

from __future__ import annotations

import argparse
import io
import json
import logging
import multiprocessing
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from facefusion_ray.analysis.face import Face
from facefusion_ray.cache import (
    AnalysisCache,
    FrameAnalysis,
    video_fingerprint,
)
from facefusion_ray.cache import fingerprints as fingerprint_module
from facefusion_ray.cache.analysis_chunks import ANALYSIS_CACHE_ENV, chunk_file_name
from facefusion_ray.cache.operations import cache_stats, prune, purge_video, verify
from facefusion_ray.cache.schema import analysis_schema
from facefusion_ray.cli.cache_commands import add_cache_commands, run_cache_command
from facefusion_ray.media.decode import frame_fingerprint
from facefusion_ray.paths import CACHE_ENV
from facefusion_ray.storage import StorageError, put_bytes_atomic, read_bytes

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier

    from tests.s3_server import S3Server

pytest_plugins = ["tests.s3_server"]

STORE_KINDS = ["local", "s3"]
SFACE_SIZE = 128
VIDEO = "a" * 64
OTHER_VIDEO = "b" * 64
# Analysis keys as pipeline.content_keys derives them (20 hex digits); their derivation is
# tested in test_content_keys.py.
KEY = "f3d1c27c22a052e9e6c2"
OTHER_KEY = "0123456789abcdef0123"


@dataclass
class CacheUnderTest:
    url: str
    storage_options: dict[str, str]
    inspector: AnalysisCache | None = None  # one S3 client for the checks, reused

    def open(self) -> AnalysisCache:
        # Every hit records its access, so that LRU order follows the test's order exactly.
        return AnalysisCache(self.url, self.storage_options, access_update_interval_seconds=0)

    def inspect(self) -> AnalysisCache:
        if self.inspector is None:
            self.inspector = self.open()
        return self.inspector

    def chunk_path(self, video: str, start: int, end: int) -> str:
        return self.inspect().folder(KEY, video) + "/" + chunk_file_name(start, end)

    def chunk_names(self) -> list[str]:
        return sorted(entry.name for entry in self.inspect().entries())

    def put(self, path: str, payload: bytes) -> None:
        put_bytes_atomic(self.inspect().filesystem, payload, path)


@pytest.fixture(params=STORE_KINDS)
def cache_under_test(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> CacheUnderTest:
    if request.param == "local":
        return CacheUnderTest(str(tmp_path / "analysis"), {})
    server: S3Server = request.getfixturevalue("s3_server")
    for name, value in server.environment().items():
        monkeypatch.setenv(name, value)
    return CacheUnderTest(f"s3://{server.create_bucket('analysis')}/cache", {})


def make_records(
    start: int, count: int, seed: int = 0, embedding_size: int = SFACE_SIZE
) -> list[FrameAnalysis]:
    """Frames with 0-3 faces; some faces lack 68 landmarks or embeddings, one frame has none."""
    rng = np.random.default_rng(seed + start)
    records = []
    for frame_index in range(start, start + count):
        frame = rng.integers(0, 255, (36, 64, 3), dtype=np.uint8)
        face_count = 0 if frame_index % 5 == 0 else 1 + frame_index % 3
        faces, marks = [], []
        for number in range(face_count):
            x, y = rng.uniform(0, 40, 2)
            embedding = None
            if (frame_index + number) % 4 != 3:
                embedding = rng.normal(size=embedding_size).astype(np.float32)
            faces.append(
                Face(
                    bbox=np.array([x, y, x + 20, y + 24], np.float32),
                    score=float(rng.uniform(0.5, 1.0)),
                    landmarks_5=rng.uniform(0, 64, (5, 2)).astype(np.float32),
                    embedding=embedding,
                    normed_embedding=None
                    if embedding is None
                    else embedding / np.linalg.norm(embedding),
                )
            )
            has_68 = (frame_index + number) % 3 != 1
            marks.append(rng.uniform(0, 64, (68, 2)).astype(np.float32) if has_68 else None)
        records.append(
            FrameAnalysis(
                frame_index=frame_index,
                frame_fingerprint=frame_fingerprint(frame),
                faces=faces,
                landmarks_68=marks if any(m is not None for m in marks) else None,
            )
        )
    return records


def assert_same_records(actual: Sequence[FrameAnalysis], expected: Sequence[FrameAnalysis]) -> None:
    assert [record.frame_index for record in actual] == [r.frame_index for r in expected]
    for got, want in zip(actual, expected, strict=True):
        assert got.frame_fingerprint == want.frame_fingerprint
        assert len(got.faces) == len(want.faces)
        for number, (face, reference) in enumerate(zip(got.faces, want.faces, strict=True)):
            assert face.bbox.dtype == np.float32 and face.bbox.shape == (4,)
            np.testing.assert_array_equal(face.bbox, reference.bbox)
            assert face.score == pytest.approx(reference.score, abs=1e-6)
            assert face.landmarks_5.shape == (5, 2)
            np.testing.assert_array_equal(face.landmarks_5, reference.landmarks_5)
            for name in ("embedding", "normed_embedding"):
                value, wanted = getattr(face, name), getattr(reference, name)
                if wanted is None:
                    assert value is None
                else:
                    np.testing.assert_allclose(value, wanted, rtol=1e-6)
            marks, wanted_marks = got.landmarks_68_of(number), want.landmarks_68_of(number)
            if wanted_marks is None:
                assert marks is None
            else:
                np.testing.assert_array_equal(marks, wanted_marks)


def write_in_chunks(
    cache: AnalysisCache, records: Sequence[FrameAnalysis], size: int, video: str = VIDEO
) -> None:
    for first in range(0, len(records), size):
        cache.write(video, KEY, records[first : first + size])


def test_round_trip_and_plain_pyarrow_reading(cache_under_test: CacheUnderTest) -> None:
    cache = cache_under_test.open()
    records = make_records(0, 12)
    assert cache.lookup(VIDEO, KEY, 0, 12) is None

    path = cache.write(VIDEO, KEY, records)

    assert_same_records(cache.lookup(VIDEO, KEY, 0, 12) or [], records)
    assert_same_records(cache.lookup(VIDEO, KEY, 3, 4) or [], records[3:7])
    assert cache.lookup(VIDEO, KEY, 10, 3) is None

    first_frame = cache.lookup(VIDEO, KEY, 0, 1)
    assert records[0].faces == [] and first_frame is not None and first_frame[0].faces == []
    table = pq.read_table(io.BytesIO(read_bytes(cache.filesystem, path)))
    assert table.schema.equals(analysis_schema(SFACE_SIZE), check_metadata=False)
    embedding_type = table.schema.field("faces").type.value_type.field("embedding").type
    assert embedding_type == pa.list_(pa.float32(), SFACE_SIZE)  # fixed-size, like the others
    assert table.column("frame_index").to_pylist() == list(range(12))
    assert (
        pq.ParquetFile(io.BytesIO(read_bytes(cache.filesystem, path)))
        .metadata.row_group(0)
        .column(0)
        .compression
        == "ZSTD"
    )
    faces = table.column("faces").combine_chunks().flatten()
    assert len(faces) == sum(len(record.faces) for record in records)
    bboxes = faces.field("bbox").flatten().to_numpy().reshape(-1, 4)
    np.testing.assert_array_equal(bboxes[0], records[1].faces[0].bbox)


def test_frame_without_faces_and_embedding_size_checks(tmp_path: Path) -> None:
    cache = AnalysisCache(str(tmp_path / "analysis"))
    empty = [FrameAnalysis(frame_index=index, frame_fingerprint="f", faces=[]) for index in (4, 5)]
    path = cache.write(VIDEO, KEY, empty)
    found = cache.lookup(VIDEO, KEY, 4, 2)
    assert found is not None and [record.faces for record in found] == [[], []]
    # Nothing embedded: the face struct has no embedding fields at all.
    face = pq.read_schema(path).field("faces").type.value_type
    assert [field.name for field in face] == ["bbox", "score", "landmarks_5", "landmarks_68"]

    arcface = make_records(0, 3, embedding_size=512)
    cache.write(OTHER_VIDEO, KEY, arcface)
    assert_same_records(cache.lookup(OTHER_VIDEO, KEY, 0, 3) or [], arcface)
    mixed = make_records(0, 2) + make_records(2, 1, embedding_size=512)
    with pytest.raises(ValueError, match="different sizes"):
        cache.write(VIDEO, KEY, mixed)
    with pytest.raises(ValueError, match="contiguous"):
        cache.write(VIDEO, KEY, [*make_records(0, 1), *make_records(2, 1)])


def test_hit_after_a_chunk_size_change(cache_under_test: CacheUnderTest) -> None:
    cache = cache_under_test.open()
    records = make_records(0, 70)
    write_in_chunks(cache, records, 7)

    for first in range(0, 70, 5):
        assert_same_records(cache.lookup(VIDEO, KEY, first, 5) or [], records[first : first + 5])
    assert_same_records(cache.lookup(VIDEO, KEY, 0, 64) or [], records[:64])
    assert cache.lookup(VIDEO, KEY, 64, 64) is None  # frames 70.. were never written


def test_entries_are_found_by_their_analysis_key_only(cache_under_test: CacheUnderTest) -> None:
    cache = cache_under_test.open()
    cache.write(VIDEO, KEY, make_records(0, 8))

    assert cache.lookup(VIDEO, OTHER_KEY, 0, 8) is None
    assert cache.lookup(VIDEO, KEY, 0, 8) is not None


def _write_after_barrier(url: str, seed: int, barrier: Barrier) -> None:
    cache = AnalysisCache(url)
    records = make_records(0, 64, seed=seed)
    barrier.wait(timeout=30)
    for _ in range(3):
        cache.write(VIDEO, KEY, records)


def test_concurrent_writers_leave_one_valid_file(cache_under_test: CacheUnderTest) -> None:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    writers = [
        context.Process(target=_write_after_barrier, args=(cache_under_test.url, seed, barrier))
        for seed in (1, 2)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
    assert [writer.exitcode for writer in writers] == [0, 0]

    assert cache_under_test.chunk_names() == [chunk_file_name(0, 64)]
    inspector = cache_under_test.inspect()
    listed = inspector.filesystem.find(inspector.folder(KEY, VIDEO))
    assert [path.rsplit("/", 1)[-1] for path in listed] == [chunk_file_name(0, 64)]
    found = inspector.lookup(VIDEO, KEY, 0, 64)
    assert found is not None
    candidates = [make_records(0, 64, seed=seed) for seed in (1, 2)]
    matching = [c for c in candidates if c[0].frame_fingerprint == found[0].frame_fingerprint]
    assert len(matching) == 1
    assert_same_records(found, matching[0])


@pytest.mark.parametrize("damage", ["truncated", "foreign", "wrong_rows"])
def test_bad_file_is_a_logged_miss_and_is_replaced(
    cache_under_test: CacheUnderTest, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = cache_under_test.open()
    records = make_records(0, 10)
    path = cache.write(VIDEO, KEY, records)
    payload = read_bytes(cache.filesystem, path)
    if damage == "truncated":
        bad = payload[: len(payload) // 2]
    else:
        rows = 10 if damage == "foreign" else 9
        table = pa.table({"frame": list(range(rows)), "label": ["x"] * rows})
        if damage == "wrong_rows":
            table = pq.read_table(io.BytesIO(payload)).slice(0, rows)
        sink = io.BytesIO()
        pq.write_table(table, sink)
        bad = sink.getvalue()
    cache_under_test.put(path, bad)

    with caplog.at_level(logging.WARNING, logger="facefusion_ray"):
        assert cache.lookup(VIDEO, KEY, 0, 10) is None
    assert "removing bad chunk" in caplog.text
    assert cache_under_test.chunk_names() == []

    cache.write(VIDEO, KEY, records)
    assert_same_records(cache.lookup(VIDEO, KEY, 0, 10) or [], records)


def test_bad_chunk_overlapped_by_good_ones_still_hits(cache_under_test: CacheUnderTest) -> None:
    cache = cache_under_test.open()
    records = make_records(0, 14)
    write_in_chunks(cache, records, 7)
    wide = cache.write(VIDEO, KEY, records)  # preferred: it covers the range in one read
    cache_under_test.put(wide, b"PAR1")

    assert_same_records(cache.lookup(VIDEO, KEY, 0, 14) or [], records)
    assert cache_under_test.chunk_names() == [chunk_file_name(0, 7), chunk_file_name(7, 14)]


def test_mismatching_frame_fingerprint_is_a_miss(cache_under_test: CacheUnderTest) -> None:
    cache = cache_under_test.open()
    records = make_records(0, 6)
    cache.write(VIDEO, KEY, records)
    expected = [record.frame_fingerprint for record in records]

    assert_same_records(cache.lookup(VIDEO, KEY, 0, 6, expected) or [], records)
    assert cache.lookup(VIDEO, KEY, 0, 6, [*expected[:5], "0" * 64]) is None
    assert cache_under_test.chunk_names() == []


def test_prune_keeps_the_most_recently_used_chunks(cache_under_test: CacheUnderTest) -> None:
    cache = cache_under_test.open()
    videos = ["1" * 64, "2" * 64, "3" * 64, "4" * 64]
    for video in videos:
        cache.write(video, KEY, make_records(0, 8))
    for video in (videos[1], videos[2], videos[3], videos[0]):  # first written, last used
        assert cache.lookup(video, KEY, 0, 8) is not None
    sizes = {entry.video_fingerprint: entry.size_bytes for entry in cache.entries()}
    limit = sizes[videos[0]] + sizes[videos[3]]

    removed = prune(cache, limit)

    assert [entry.video_fingerprint for entry in removed] == [videos[1], videos[2]]
    remaining = cache.entries()
    assert {entry.video_fingerprint for entry in remaining} == {videos[0], videos[3]}
    assert sum(entry.size_bytes for entry in remaining) <= limit
    assert prune(cache, limit) == []
    assert len(prune(cache, 0)) == 2 and cache.entries() == []


def test_stats_verify_and_purge(cache_under_test: CacheUnderTest) -> None:
    cache = cache_under_test.open()
    assert cache_stats(cache)["entries"] == 0
    write_in_chunks(cache, make_records(0, 20), 10)
    cache.write(OTHER_VIDEO, KEY, make_records(0, 5))

    stats = cache_stats(cache)
    assert stats["entries"] == 3 and stats["videos"] == 2 and stats["frames"] == 25
    assert stats["bytes"] == sum(entry.size_bytes for entry in cache.entries()) > 0
    assert stats["oldest"] <= stats["newest"]
    assert verify(cache).ok and verify(cache).checked == 3

    bad_path = cache_under_test.chunk_path(VIDEO, 10, 20)
    cache_under_test.put(bad_path, read_bytes(cache.filesystem, bad_path)[:100])
    report = verify(cache)
    assert [path for path, _ in report.bad] == [bad_path] and report.checked == 3

    removed = purge_video(cache, VIDEO)
    assert len(removed) == 2
    assert [entry.video_fingerprint for entry in cache.entries()] == [OTHER_VIDEO]
    assert verify(cache).ok


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="facefusion-ray")
    add_cache_commands(parser.add_subparsers(dest="command", required=True))
    return run_cache_command(parser.parse_args(argv))


def test_cache_commands(
    cache_under_test: CacheUnderTest,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    options: list[str] = []
    if cache_under_test.url.startswith("s3://"):
        server: S3Server = request.getfixturevalue("s3_server")
        options = [f"--storage-option={item}={v}" for item, v in server.storage_options().items()]
    location = ["--cache", cache_under_test.url, *options]
    cache = cache_under_test.open()
    cache.write(VIDEO, KEY, make_records(0, 8))
    cache.write(OTHER_VIDEO, KEY, make_records(0, 8))
    capsys.readouterr()

    assert run_cli(["cache", "stats", *location]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["entries"] == 2 and stats["videos"] == 2

    assert run_cli(["cache", "verify", *location]) == 0
    bad_path = cache_under_test.chunk_path(OTHER_VIDEO, 0, 8)
    cache_under_test.put(bad_path, b"PAR1 not really")
    assert run_cli(["cache", "verify", *location]) == 1
    assert "BAD" in capsys.readouterr().out

    assert run_cli(["cache", "purge", *location, "--video", OTHER_VIDEO]) == 0
    assert run_cli(["cache", "verify", *location]) == 0
    assert run_cli(["cache", "prune", *location, "--max-bytes", "0"]) == 0
    assert "pruned 1 chunks" in capsys.readouterr().out
    assert cache.entries() == []
    if options:
        for secret in (server.secret_key, server.access_key):
            assert secret not in capsys.readouterr().out


def test_local_files_are_private(tmp_path: Path) -> None:
    root = tmp_path / "analysis"
    cache = AnalysisCache(str(root), access_update_interval_seconds=0)
    path = Path(cache.write(VIDEO, KEY, make_records(0, 4)))
    assert cache.lookup(VIDEO, KEY, 0, 4) is not None

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((path.parent / "access.json").stat().st_mode) == 0o600
    folder = path.parent
    while folder != tmp_path:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
        folder = folder.parent
    assert sorted(item.name for item in path.parent.iterdir()) == [path.name, "access.json"]


def test_default_location_and_environment_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "user-cache"))
    monkeypatch.delenv(ANALYSIS_CACHE_ENV, raising=False)
    assert AnalysisCache().root == str(tmp_path / "user-cache" / "analysis")
    monkeypatch.setenv(ANALYSIS_CACHE_ENV, str(tmp_path / "shared"))
    assert AnalysisCache().root == str(tmp_path / "shared")


def test_errors_never_show_credentials(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_server.region)
    secret = "Sup3r-Secret-Value-0123456789"
    bucket = s3_server.create_bucket("creds")
    for endpoint in (s3_server.endpoint_url, "http://127.0.0.1:9"):
        options = {
            "client_kwargs.endpoint_url": endpoint,
            "key": s3_server.access_key,
            "secret": secret,
        }
        cache = AnalysisCache(f"s3://{bucket}/cache", options)
        with pytest.raises(StorageError) as raised:
            cache.write(VIDEO, KEY, make_records(0, 2))
        assert secret not in str(raised.value)
        with pytest.raises(StorageError) as raised:
            cache.lookup(VIDEO, KEY, 0, 2)
        assert secret not in str(raised.value)
    assert secret not in caplog.text


def test_video_fingerprint_is_computed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "user-cache"))
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"frames" * 1000)
    hashed: list[Path] = []
    original = fingerprint_module.file_sha256

    def counting(path: Path) -> str:
        hashed.append(path)
        return original(path)

    monkeypatch.setattr(fingerprint_module, "file_sha256", counting)

    first = video_fingerprint(video)
    assert video_fingerprint(str(video)) == first and len(hashed) == 1
    assert len(first) == 64 and (tmp_path / "user-cache" / "fingerprints").is_dir()
    video.write_bytes(b"other frames" * 1000)
    assert video_fingerprint(video) != first and len(hashed) == 2


def test_s3_store_configured_by_profile_and_service_endpoint(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The studio way: keys in a named profile, the endpoint in AWS_ENDPOINT_URL_S3."""
    bucket = s3_server.create_bucket("profile")  # before the environment changes under boto3
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(
        "[render-farm]\n"
        f"aws_access_key_id = {s3_server.access_key}\n"
        f"aws_secret_access_key = {s3_server.secret_key}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_PROFILE", "render-farm")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_server.region)
    cache = AnalysisCache(f"s3://{bucket}/analysis")
    records = make_records(0, 6)
    cache.write(VIDEO, KEY, records)
    assert_same_records(AnalysisCache(f"s3://{bucket}/analysis").lookup(VIDEO, KEY, 0, 6), records)
    # Another profile's keys are refused by the server: the profile is what authenticated.
    credentials.write_text(
        "[render-farm]\naws_access_key_id = AKNOTAKEY\naws_secret_access_key = wrong-secret\n"
    )
    with pytest.raises(StorageError, match=r"(?i)denied|forbidden|signature|credential|access"):
        AnalysisCache(f"s3://{bucket}/analysis").write(OTHER_VIDEO, KEY, records)
