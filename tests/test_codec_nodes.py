"""The node that encodes chooses the encoder (issue 16, leftover of parts 1-2): a driver whose
ffmpeg lacks an encoder still plans the render, every actor probes its own ffmpeg, and nodes that
disagree never make an output of mixed segments.

A node "without" an encoder is a real ffmpeg with the encoder hidden from this project's probe
(FACEFUSION_RAY_TEST_HIDDEN_VIDEO_ENCODERS, read once per process); nothing of ffmpeg is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

from facefusion_ray.errors import MediaError
from facefusion_ray.inference.execution import ExecutionConfig
from facefusion_ray.media import SegmentEncoder, assemble_video, iter_frames, probe_media
from facefusion_ray.media.video_codecs import (
    HIDDEN_ENCODERS_ENV,
    CodecUnavailable,
    available_video_encoders,
    encoder_failure,
)
from facefusion_ray.pipeline import codec_choice
from facefusion_ray.pipeline.codec_choice import one_encoder_segments, usable_codecs
from facefusion_ray.settings import SwapSettings
from tests.media_factory import frame_index, make_indexed_clip, stream_summary

FRAMES = 12
FALLBACK = ExecutionConfig(allow_cpu_fallback=True)


def forget_probes() -> None:
    available_video_encoders.cache_clear()
    encoder_failure.cache_clear()
    codec_choice._usable_codecs.cache_clear()


@pytest.fixture
def hidden_libx265(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(HIDDEN_ENCODERS_ENV, "libx265")
    forget_probes()
    yield
    monkeypatch.delenv(HIDDEN_ENCODERS_ENV)
    forget_probes()


@pytest.mark.usefixtures("hidden_libx265")
def test_a_process_without_the_encoder_refuses_or_falls_back_once() -> None:
    assert "libx265" not in available_video_encoders()
    with pytest.raises(CodecUnavailable, match="libx265 cannot be used: not in this ffmpeg"):
        usable_codecs(SwapSettings(output_video_encoder="libx265"))
    choice = usable_codecs(SwapSettings(output_video_encoder="libx265", execution=FALLBACK))
    assert (choice.encoder, len(choice.notes)) == ("libx264", 1)
    assert usable_codecs(SwapSettings(output_video_encoder="libx265", execution=FALLBACK)) is choice


def _segment(clip: Path, path: Path, start: int, count: int, encoder: str) -> Path:
    info = probe_media(clip)
    assert info.fps is not None
    with SegmentEncoder(path, info.width, info.height, info.fps, 90, encoder=encoder) as writer:
        for frame in iter_frames(clip, start, count, info):
            writer.write(frame)
    return path


def test_segments_of_two_encoders_become_one_encoders_output(tmp_path: Path) -> None:
    clip = make_indexed_clip(tmp_path / "indexed.mp4", frames=FRAMES)
    encoders = ["libx265", "libx264", "libx265"]
    ranges = [(0, 4), (4, 4), (8, 4)]
    segments = [
        _segment(clip, tmp_path / f"s{index}.mp4", start, count, encoder)
        for index, ((start, count), encoder) in enumerate(zip(ranges, encoders, strict=True))
    ]
    refused = SwapSettings(output_video_encoder="libx265")
    with (
        pytest.raises(MediaError, match="several encoders") as raised,
        one_encoder_segments(segments, encoders, refused, []),
    ):
        pass
    assert "\n" not in str(raised.value)
    notes: list[str] = []
    allowed = SwapSettings(output_video_encoder="libx265", execution=FALLBACK)
    output = tmp_path / "joined.mp4"
    with one_encoder_segments(segments, encoders, allowed, notes) as unified:
        assert unified[1] == segments[1] and unified[0] != segments[0]
        assemble_video(unified, Fraction(25), output, None)
    assert "Video: h264" in stream_summary(output)
    assert len(notes) == 1 and "2 of 3 segments made with libx265" in notes[0]
    result = probe_media(output)
    assert [frame_index(frame) for frame in iter_frames(output, 0, FRAMES, result)] == list(
        range(FRAMES)
    )
    with one_encoder_segments(segments[1:2], ["libx264"], refused, notes) as same:
        assert same == segments[1:2] and len(notes) == 1


# Head node (the driver, no CPUs for actors) and node A: their ffmpeg lacks libx265. Node B has
# it. With 2 workers of 1 CPU, one actor runs on each of A and B.
DISAGREEING_NODES = """
import json, os
import ray
from ray.cluster_utils import Cluster

from facefusion_ray.engine.driver import job_options_for
from facefusion_ray.engine.job import run_job
from facefusion_ray.inference.execution import ExecutionConfig
from facefusion_ray.media.video_codecs import HIDDEN_ENCODERS_ENV, encoder_failure
from facefusion_ray.pipeline.render_request import RenderRequest
from facefusion_ray.settings import SwapSettings

assert encoder_failure("libx265") == "not in this ffmpeg"  # the driver's ffmpeg lacks it
cluster = Cluster(initialize_head=True, head_node_args={{"num_cpus": 0}})
for hidden in ("libx265", ""):
    cluster.add_node(num_cpus=1, env_vars={{HIDDEN_ENCODERS_ENV: hidden}})
ray.init(address=cluster.address, logging_level="WARNING")
cluster.wait_for_nodes()
results = {{}}
for name, allow in (("refused", False), ("fallback", True)):
    settings = SwapSettings(
        chunk_frames=2, workers=2, output_video_encoder="libx265",
        execution=ExecutionConfig(allow_cpu_fallback=allow),
    )
    output = os.path.join({folder!r}, name + ".mp4")
    request = RenderRequest({target!r}, ({source!r},), output, settings)
    options = job_options_for(
        settings, show_progress=False, work_store=os.path.join({folder!r}, "work-" + name)
    )
    render = run_job([request], options).renders[0]
    notes = render.report.notes if render.report is not None else []
    results[name] = {{"status": render.status, "error": render.error, "notes": notes}}
print(json.dumps(results))
ray.shutdown()
cluster.shutdown()
"""


def test_nodes_that_disagree_on_an_encoder_make_one_encoders_output(
    sample_media, tmp_path: Path
) -> None:
    clip = make_indexed_clip(tmp_path / "target.mp4", frames=FRAMES, audio=True)
    script = tmp_path / "disagree.py"
    script.write_text(
        DISAGREEING_NODES.format(
            folder=str(tmp_path), target=str(clip), source=str(sample_media.source_tom_hanks)
        )
    )
    environment = {**os.environ, "PYTHONPATH": str(Path.cwd()), HIDDEN_ENCODERS_ENV: "libx265"}
    finished = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=240, env=environment
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    results = json.loads(finished.stdout.strip().splitlines()[-1])
    # Without the fallback, node A's chunks fail in one line naming the cause.
    assert results["refused"]["status"] == "failed"
    error = results["refused"]["error"]
    assert "output video encoder libx265 cannot be used: not in this ffmpeg" in error
    assert "\n" not in error and not (tmp_path / "refused.mp4").exists()
    # With it, node B's libx265 segments are encoded again: one encoder, every frame in order.
    assert results["fallback"]["status"] == "rendered", results["fallback"]["error"]
    notes = results["fallback"]["notes"]
    assert any(
        "libx265 cannot be used: not in this ffmpeg; encoded with libx264" in n for n in notes
    )
    assert any("segments made with libx265 were encoded again with libx264" in n for n in notes)
    output = tmp_path / "fallback.mp4"
    assert "Video: h264" in stream_summary(output)
    info = probe_media(output)
    assert (info.frame_count, info.has_audio) == (FRAMES, True)
    assert [frame_index(frame) for frame in iter_frames(output, 0, FRAMES, info)] == list(
        range(FRAMES)
    )
