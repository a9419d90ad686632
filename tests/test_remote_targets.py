"""s3:// targets read in place on a real S3 server (SeaweedFS): probed from their index, decoded
frame-exactly by range through signed URLs that never show in errors or logs, named in the keys
by their metadata (or on request their content), and counted byte by byte through a proxy."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import ray

from benchmarks.byte_proxy import ByteCountingProxy, counting_proxy
from facefusion_ray.assets.fetch import file_sha256
from facefusion_ray.cache import video_fingerprint
from facefusion_ray.engine.driver import job_options_for
from facefusion_ray.engine.job import run_job
from facefusion_ray.errors import MediaError
from facefusion_ray.log_redaction import RedactingFilter
from facefusion_ray.media import frame_fingerprint, iter_frames, probe_media
from facefusion_ray.media.ffmpeg_tool import ffmpeg_executable
from facefusion_ray.media.remote_media import RemoteMedia
from facefusion_ray.paths import CACHE_ENV
from facefusion_ray.pipeline import target_input
from facefusion_ray.pipeline.render_request import RenderRequest
from facefusion_ray.pipeline.target_input import (
    audio_source,
    open_target,
    probe_staged_copy,
    resolve_target,
    stage_planned_version,
    target_fingerprint,
)
from facefusion_ray.settings import SwapSettings
from facefusion_ray.storage import open_filesystem, put_atomic, redact
from facefusion_ray.storage.locations import STAGED_FOLDER_NAME
from facefusion_ray.storage.ranged_reads import TargetReads
from facefusion_ray.storage.staged_inputs import prune_staged_copies
from tests.media_checks import decoded_frames
from tests.media_factory import make_indexed_clip, run_ffmpeg_cli

if TYPE_CHECKING:
    from tests.s3_server import S3Server

pytest_plugins = ["tests.s3_server"]

BY_RANGE = TargetReads(stage_below_bytes=0)
VARIANTS = {
    # name: (file name, make_indexed_clip keyword arguments, probed from an index stand-in)
    "mp4_bframes": ("indexed.mp4", {"rate": "25"}, True),
    "mp4_variable_rate_with_audio": ("vfr.mp4", {
        "rate": "25", "audio": True,
        "extra_filter": "settb=1/25000,setpts=(N/25+gte(N\\,30)*0.3)/TB",
        "video_args": ("-c:v", "libx264", "-qp", "0", "-fps_mode", "passthrough", "-c:a", "aac"),
    }, True),
    "mkv_scanned_by_range": ("indexed.mkv", {"rate": "30000/1001"}, False),
}  # fmt: skip


@dataclass(frozen=True)
class Store:
    bucket: str  # s3://name
    options: dict[str, str] = field(repr=False)  # through the counting proxy; credentials
    proxy: ByteCountingProxy = field(repr=False)
    marks: dict[str, int] = field(default_factory=dict, repr=False)

    def mark(self, key: str) -> None:
        """Count the reads of `key` from now on."""
        self.marks[key] = self.proxy.snapshot(settled=True).bytes_read_of(key)

    def read_since_mark(self, key: str) -> int:
        return self.proxy.snapshot(settled=True).bytes_read_of(key) - self.marks.get(key, 0)

    def put(self, local: Path, key: str) -> str:
        location = f"{self.bucket}/{key}"
        filesystem, path = open_filesystem(location, self.options)
        put_atomic(filesystem, local, path)
        return location


@pytest.fixture(scope="module")
def store(s3_server: S3Server) -> Iterator[Store]:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_DEFAULT_REGION", s3_server.region)
        with counting_proxy(s3_server.endpoint_url) as proxy:
            options = {
                **s3_server.storage_options(),
                "client_kwargs.endpoint_url": proxy.endpoint_url,
            }
            bucket = f"s3://{s3_server.create_bucket('ranged')}"
            yield Store(bucket, options, proxy)


@pytest.fixture(autouse=True)
def node_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "node-cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    return cache


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def uploaded(
    request: pytest.FixtureRequest, store: Store, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str, bool]:
    file_name, options, indexed = VARIANTS[request.param]
    local = make_indexed_clip(
        tmp_path_factory.mktemp(request.param) / file_name, frames=75, **options
    )
    return local, store.put(local, f"{request.param}/{file_name}"), indexed


@pytest.fixture(scope="module")
def large_clip(store: Store, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A noisy 6 s clip with a keyframe each second: big enough for byte counts to mean much."""
    local = tmp_path_factory.mktemp("large") / "large.mp4"
    run_ffmpeg_cli(
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=6",
        "-f", "lavfi", "-i", "sine=duration=6", "-vf", "noise=alls=40:allf=t",
        "-c:v", "libx264", "-preset", "ultrafast", "-qp", "20", "-g", "25", "-c:a", "aac",
        "-shortest", str(local),
    )  # fmt: skip
    return local, store.put(local, "large/large.mp4")


def audio_packets(path: Path) -> bytes:
    """The MD5 of a file's audio packets, as ffmpeg copies them."""
    command = [ffmpeg_executable(), "-v", "error", "-i", str(path), "-map", "0:a", "-c", "copy"]
    return subprocess.run([*command, "-f", "md5", "-"], capture_output=True, check=True).stdout


def test_remote_targets_probe_like_local_ones_and_decode_frame_exactly(
    store: Store, uploaded: tuple[Path, str, bool]
) -> None:
    local, location, indexed = uploaded
    target = resolve_target(location, BY_RANGE, store.options)
    assert target.read_by_range and target.remote is not None
    media = open_target(target, BY_RANGE, store.options, with_index=True)
    assert isinstance(media, RemoteMedia)
    assert (media.index_copy is not None) == indexed
    info = probe_media(media)
    assert info == replace(probe_media(local), path=location)
    full = [frame_fingerprint(frame) for frame in iter_frames(local, 0, 75, info)]
    for start, count in [(29, 4), (61, 14)]:
        chunk = open_target(target, BY_RANGE, store.options, check_version=True)
        remote = [frame_fingerprint(frame) for frame in iter_frames(chunk, start, count, info)]
        assert remote == full[start : start + count], f"frames {start}..{start + count - 1}"


def test_the_driver_probes_and_each_chunk_decodes_only_part_of_a_large_target(
    store: Store, large_clip: tuple[Path, str], node_cache: Path
) -> None:
    local, location = large_clip
    size = local.stat().st_size
    store.mark("large/large.mp4")
    target = resolve_target(location, BY_RANGE, store.options)
    info = probe_media(open_target(target, BY_RANGE, store.options, with_index=True))
    probed = store.read_since_mark("large/large.mp4")
    assert info.frame_count == 150 and info.has_audio
    assert info.keyframes == tuple(range(0, 150, 25))  # from the index's sync samples
    assert probed < size * 0.25, f"the probe read {probed} of {size} bytes"
    assert not any((node_cache / STAGED_FOLDER_NAME).rglob("large.mp4"))  # never downloaded
    # The probe's index stand-in holds the audio too: the assembly reads nothing more.
    audio = audio_source(target, BY_RANGE, store.options)
    assert isinstance(audio, Path) and store.read_since_mark("large/large.mp4") == probed
    assert audio_packets(audio) == audio_packets(local)
    # Frames 110..119: from the keyframe at 100 to a little past 119, plus the index.
    expected = [frame_fingerprint(f) for f in iter_frames(local, 110, 10, info)]
    store.mark("large/large.mp4")
    chunk = open_target(target, BY_RANGE, store.options)
    assert [frame_fingerprint(f) for f in iter_frames(chunk, 110, 10, info)] == expected
    decoded = store.read_since_mark("large/large.mp4")
    assert decoded < size * 0.4, f"frames 110..119 read {decoded} of {size} bytes"
    # A chunk that starts on a keyframe reads from there; a frame earlier, from the keyframe
    # at 100 (measured: 1.47 MB against 2.80 MB).
    read = {}
    for start in (124, 125):
        store.mark("large/large.mp4")
        chunk = open_target(target, BY_RANGE, store.options)
        assert len(list(iter_frames(chunk, start, 10, info))) == 10
        read[start] = store.read_since_mark("large/large.mp4")
    assert read[125] < read[124] * 0.7, read


@pytest.fixture(scope="module")
def small_clip(store: Store, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    local = make_indexed_clip(tmp_path_factory.mktemp("small") / "small.mp4", frames=20)
    return local, store.put(local, "small/small.mp4")


def test_small_remote_targets_are_staged_whole_and_large_ones_are_not(
    store: Store, small_clip: tuple[Path, str], node_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local, location = small_clip
    staged = resolve_target(location, TargetReads(), store.options)
    assert staged.local is not None and staged.local.read_bytes() == local.read_bytes()
    assert open_target(staged, TargetReads(), store.options) == staged.local
    assert staged.staged_on_nodes and not staged.read_by_range
    assert staged.remote is not None and staged.staged_identity == staged.remote.fingerprint
    by_range = resolve_target(
        location, TargetReads(stage_below_bytes=local.stat().st_size), store.options
    )
    assert by_range.read_by_range and by_range.staged_identity is None
    # One of a size where a ranged probe reads a small part of it: the nodes stage it, the
    # driver does not.
    monkeypatch.setattr(target_input, "PROBE_BY_RANGE_FROM_BYTES", local.stat().st_size)
    for copy in (node_cache / STAGED_FOLDER_NAME).rglob("small.mp4"):
        copy.unlink()
    probed = resolve_target(location, TargetReads(), store.options)
    assert probed.local is None and probed.staged_on_nodes and not probed.read_by_range
    media = open_target(probed, TargetReads(), store.options, with_index=True)
    assert isinstance(media, RemoteMedia) and probe_media(media).frame_count == 20
    assert not any((node_cache / STAGED_FOLDER_NAME).rglob("small.mp4"))


def test_target_identity_is_metadata_by_default_and_content_on_request(
    store: Store, tmp_path: Path, small_clip: tuple[Path, str]
) -> None:
    clip, _ = small_clip
    location = store.put(clip, "identity/clip.mp4")
    target = resolve_target(location, BY_RANGE, store.options)
    assert target.remote is not None
    first = target_fingerprint(target, BY_RANGE, store.options)
    assert first == target.remote.fingerprint
    assert first == target_fingerprint(resolve_target(location, BY_RANGE, store.options), BY_RANGE)
    content = TargetReads(stage_below_bytes=0, identity="content")
    assert target_fingerprint(target, content, store.options) == file_sha256(clip)
    # A local target keeps today's identity: the SHA-256 of its content.
    local_target = resolve_target(str(clip), BY_RANGE)
    assert (
        target_fingerprint(local_target, BY_RANGE) == video_fingerprint(clip) == file_sha256(clip)
    )
    # Replacing the object changes its identity, and a chunk planned on the old one refuses it.
    changed = tmp_path / "changed.mp4"
    run_ffmpeg_cli("-i", str(clip), "-frames:v", "10", "-c", "copy", str(changed))
    store.put(changed, "identity/clip.mp4")
    replaced = resolve_target(location, BY_RANGE, store.options)
    assert target_fingerprint(replaced, BY_RANGE) != first
    with pytest.raises(MediaError, match="changed since the job was planned"):
        open_target(target, BY_RANGE, store.options, check_version=True)


def test_signed_urls_never_show_in_errors_reprs_or_logs(
    store: Store, large_clip: tuple[Path, str]
) -> None:
    _, location = large_clip
    target = resolve_target(location, BY_RANGE, store.options)
    media = open_target(target, BY_RANGE, store.options, with_index=True)
    assert isinstance(media, RemoteMedia)
    signature = media.url.split("X-Amz-Signature=")[1].split("&")[0]
    assert signature and media.url not in repr(media) and str(media) == location
    info = probe_media(media)
    # A wrong signature, and no cached facts of this version to answer from.
    forged_url = media.url.replace(signature, "0" * len(signature))
    forged = replace(media, url=forged_url, version="forged", index_copy=None)
    for attempt in (lambda: probe_media(forged), lambda: list(iter_frames(forged, 5, 2, info))):
        with pytest.raises(MediaError) as raised:
            attempt()
        message = str(raised.value)
        assert location in message
        assert "X-Amz" not in message and signature not in message and "?" not in message
    # Logs: a signed URL in any record (ours or a library's) loses its signature and key id.
    record = logging.LogRecord("botocore", logging.DEBUG, __file__, 1, "GET %s", (media.url,), None)
    RedactingFilter().filter(record)
    assert signature not in record.getMessage() and "X-Amz-Signature=***" in record.getMessage()
    assert store.options["key"] not in redact(media.url)


@pytest.mark.usefixtures("local_ray")
@pytest.mark.parametrize("staged_on_nodes", [False, True], ids=["by-range", "staged-on-nodes"])
def test_a_job_renders_a_remote_target_by_range_like_the_local_file(
    store: Store,
    sample_media,
    short_group_clip: Path,
    tmp_path: Path,
    node_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    staged_on_nodes: bool,
) -> None:
    """Read by range by the driver and the chunks, or (staged on nodes) probed by range by
    the driver and staged whole by the nodes."""
    clip = tmp_path / "group.mp4"
    run_ffmpeg_cli("-i", str(short_group_clip), "-frames:v", "12", "-c", "copy", str(clip))
    location = store.put(clip, f"job-{staged_on_nodes}/group.mp4")
    reads = BY_RANGE
    if staged_on_nodes:
        monkeypatch.setattr(target_input, "PROBE_BY_RANGE_FROM_BYTES", 0)
        reads = TargetReads()
    settings = SwapSettings(chunk_frames=4, workers=2, output_video_quality=100, target_reads=reads)
    sources = (str(sample_media.source_tom_hanks),)
    outputs = {name: tmp_path / f"{name}.mp4" for name in ("remote", "local")}
    requests = [
        RenderRequest(location, sources, str(outputs["remote"]), settings),
        RenderRequest(str(clip), sources, str(outputs["local"]), settings),
    ]  # one job, one pool of actors: the remote render and the local one side by side
    options = job_options_for(settings, show_progress=False, storage_options=store.options.items())
    remote, local = (outcome.report for outcome in run_job(requests, options).renders)
    assert remote is not None and local is not None
    assert remote.chunks == local.chunks > 1 and remote.faces_swapped == local.faces_swapped > 0
    if not staged_on_nodes:
        assert not any((node_cache / STAGED_FOLDER_NAME).rglob("group.mp4"))  # never downloaded
    pairs = zip(decoded_frames(outputs["remote"]), decoded_frames(outputs["local"]), strict=True)
    for index, (a, b) in enumerate(pairs):
        assert np.array_equal(a, b), f"frame {index} differs"
    assert probe_media(outputs["remote"]).has_audio


def test_a_corrupt_small_remote_target_fails_its_render_with_one_line(
    store: Store, sample_media, tmp_path: Path
) -> None:
    """A node stages and probes a small target for the driver: what it finds wrong comes back
    as the render's error, as the driver's own probe would give it."""
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"not a video" * 2000)
    location = store.put(broken, "broken/broken.mp4")
    settings = SwapSettings(workers=1)
    request = RenderRequest(
        location, (str(sample_media.source_tom_hanks),), str(tmp_path / "out.mp4"), settings
    )
    options = job_options_for(settings, show_progress=False, storage_options=store.options.items())
    (outcome,) = run_job([request], options).renders
    assert outcome.status == "failed" and isinstance(outcome.cause, MediaError)
    assert outcome.error is not None and "broken.mp4" in outcome.error
    assert "\n" not in outcome.error and "Signature" not in outcome.error
    assert not (tmp_path / "out.mp4").exists()


def test_a_node_stages_only_the_version_its_job_planned_with(
    store: Store, small_clip: tuple[Path, str], tmp_path: Path, node_cache: Path
) -> None:
    local, _ = small_clip
    location = store.put(local, "replaced/clip.mp4")
    planned = resolve_target(location, TargetReads(), store.options, probed_on_a_node=True)
    assert planned.local is None and planned.staged_on_nodes
    assert probe_staged_copy(planned, store.options, None).frame_count == 20
    other = make_indexed_clip(tmp_path / "other.mp4", frames=10)
    store.put(other, "replaced/clip.mp4")
    with pytest.raises(MediaError, match="changed since the job was planned"):
        stage_planned_version(planned, store.options)


@ray.remote(num_cpus=0)
def forget_staged_copies() -> int:
    """On a Ray worker: remove its node's staged copies, so what it needs is downloaded again."""
    return len(prune_staged_copies(0))


@pytest.mark.usefixtures("local_ray")
def test_a_re_run_finds_a_small_remote_target_up_to_date_without_reading_it(
    store: Store, small_clip: tuple[Path, str], sample_media, tmp_path: Path
) -> None:
    """Its keys come from the object's metadata, so the node probe, which downloads the
    target, waits until the render is known to need work: a nightly re-run of a finished
    catalog reads none of it."""
    local, _ = small_clip
    location = store.put(local, "rerun/clip.mp4")
    settings = SwapSettings(workers=1, chunk_frames=20)
    request = RenderRequest(
        location, (str(sample_media.source_tom_hanks),), str(tmp_path / "out.mp4"), settings
    )
    options = job_options_for(settings, show_progress=False, storage_options=store.options.items())
    store.mark("rerun/clip.mp4")
    (first,) = run_job([request], options).renders
    assert first.status == "rendered", first.error
    assert store.read_since_mark("rerun/clip.mp4") >= local.stat().st_size
    assert ray.get(forget_staged_copies.remote()) >= 1
    store.mark("rerun/clip.mp4")
    (again,) = run_job([request], options).renders
    assert again.status == "up to date", again.error
    assert store.read_since_mark("rerun/clip.mp4") == 0
