"""Video encoders and decode acceleration (issue 16, parts 1 and 2): every CPU encoder the bundled
ffmpeg has renders two chunks that join with the audio, frame-exactly; the NVENC and CUDA
command lines are FaceFusion's mapping; on a machine without a GPU they fail in one line or
fall back to libx264 / CPU decoding when allowed."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from facefusion_ray.cli.main import main
from facefusion_ray.errors import MediaError
from facefusion_ray.media import SegmentEncoder, assemble_video, iter_frames, probe_media
from facefusion_ray.media.container_header import cached_container_header
from facefusion_ray.media.decode import _decode_args, iter_decoded_frames
from facefusion_ray.media.pixel_transfer import decoding_pipe_format
from facefusion_ray.media.video_codecs import (
    CPU_VIDEO_ENCODERS,
    CodecUnavailable,
    available_video_encoders,
    choose_codecs,
    encoder_args,
    encoder_failure,
    hwaccel_failure,
    quality_value,
)
from facefusion_ray.pipeline.codec_choice import usable_codecs
from facefusion_ray.settings import SwapSettings
from tests.media_factory import (
    container_summary_facts,
    frame_index,
    make_clip,
    make_indexed_clip,
    stream_summary,
)

FRAMES = 16
CODEC_NAMES = {"libx264": "h264", "libx265": "hevc", "libvpx-vp9": "vp9", "libsvtav1": "av1"}


@pytest.fixture(scope="module")
def indexed_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("codecs")
    return make_indexed_clip(
        folder / "indexed.mp4",
        frames=FRAMES,
        audio=True,
        video_args=("-c:v", "libx264", "-qp", "0", "-c:a", "aac"),
    )


@pytest.mark.parametrize("encoder", CPU_VIDEO_ENCODERS)
@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_each_cpu_encoder_joins_two_chunks_with_the_audio(
    indexed_clip: Path, tmp_path: Path, encoder: str, suffix: str
) -> None:
    if encoder not in available_video_encoders():
        pytest.skip(f"this ffmpeg has no {encoder}")
    info = probe_media(indexed_clip)
    assert info.fps is not None
    segments = []
    for index, (start, count) in enumerate([(0, 7), (7, FRAMES - 7)]):
        segment = tmp_path / f"segment{index}.mp4"
        with SegmentEncoder(
            segment, info.width, info.height, info.fps, quality=90, encoder=encoder
        ) as writer:
            for frame in iter_frames(indexed_clip, start, count, info):
                writer.write(frame)
        segments.append(segment)
    output = tmp_path / f"joined{suffix}"
    assemble_video(segments, info.fps, output, indexed_clip)
    result = probe_media(output)
    assert (result.frame_count, result.has_audio) == (FRAMES, True)
    duration, rate = container_summary_facts(output)
    assert duration == pytest.approx(FRAMES / 25, abs=0.05) and rate == "25 fps"
    assert f"Video: {CODEC_NAMES[encoder]}" in stream_summary(output)
    decoded = [frame_index(frame) for frame in iter_frames(output, 0, FRAMES, result)]
    assert decoded == list(range(FRAMES))


def test_quality_and_preset_follow_facefusions_mapping_per_family() -> None:
    assert [quality_value("libx264", q) for q in (0, 50, 80, 100)] == [51, 26, 10, 0]
    assert [quality_value("libvpx-vp9", q) for q in (0, 80, 100)] == [63, 13, 0]
    assert encoder_args("h264_nvenc", 80, "veryfast", 1280, 720) == [
        "-c:v", "h264_nvenc", "-cq", "10", "-preset", "fast", "-pix_fmt", "yuv420p",
    ]  # fmt: skip
    assert encoder_args("hevc_nvenc", 0, "slower", 1280, 720) == [
        "-c:v", "hevc_nvenc", "-cq", "51", "-preset", "slow", "-tag:v", "hvc1",
        "-pix_fmt", "yuv420p",
    ]  # fmt: skip
    assert encoder_args("av1_nvenc", 100, "medium", 1280, 720) == [
        "-c:v", "av1_nvenc", "-cq", "0", "-preset", "medium", "-pix_fmt", "yuv420p",
    ]  # fmt: skip
    assert encoder_args("libx265", 80, "medium", 65, 49)[:6] == [
        "-c:v", "libx265", "-crf", "10", "-preset", "medium",
    ]  # fmt: skip
    assert encoder_args("libx265", 80, "medium", 65, 49)[-2:] == ["-pix_fmt", "yuv444p"]
    assert encoder_args("libvpx-vp9", 80, "veryslow", 64, 48) == [
        "-c:v", "libvpx-vp9", "-crf", "13", "-b:v", "0", "-pix_fmt", "yuv420p",
    ]  # fmt: skip
    assert encoder_args("libsvtav1", 50, "veryfast", 64, 48)[:6] == [
        "-c:v", "libsvtav1", "-crf", "32", "-preset", "10",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown video encoder"):
        encoder_args("mpeg2video", 80, "fast", 64, 48)


def test_cuda_decoding_adds_hwaccel_before_the_input_and_keeps_the_range(
    indexed_clip: Path,
) -> None:
    info = probe_media(indexed_clip)
    header = cached_container_header(indexed_clip)
    pipe = decoding_pipe_format(info.pixel_format, info.width, info.height)
    on_cpu = _decode_args(indexed_clip, 5, 4, info, header, pipe)
    on_cuda = _decode_args(indexed_clip, 5, 4, info, header, pipe, "cuda")
    assert on_cuda == [*on_cpu[:2], "-hwaccel", "cuda", *on_cpu[2:]]
    assert on_cuda.index("-hwaccel") < on_cuda.index("-ss") < on_cuda.index("-i")
    assert "-hwaccel_output_format" not in on_cuda  # frames come back to system memory


@pytest.mark.skipif(hwaccel_failure("cuda") is None, reason="this machine decodes on CUDA")
def test_cuda_decoding_without_a_gpu_fails_in_one_line(indexed_clip: Path) -> None:
    info = probe_media(indexed_clip)
    # Reached only where this node's probe passed but the GPU still fails: still one line.
    with pytest.raises(MediaError, match=r"^decode hwaccel cuda: .*device setup failed") as raised:
        list(iter_decoded_frames(indexed_clip, 0, 2, info, "cuda"))
    assert "\n" not in str(raised.value)


def test_the_encoder_list_is_read_from_this_ffmpeg_once() -> None:
    listed = available_video_encoders()
    assert "libx264" in listed and "aac" not in listed  # video encoders only
    assert available_video_encoders() is listed
    assert encoder_failure("libx264") is None
    assert encoder_failure("no_such_encoder") == "not in this ffmpeg"
    with pytest.raises(CodecUnavailable, match="no_such_encoder cannot be used: not in this"):
        choose_codecs("no_such_encoder", "none", allow_fallback=False)
    fallback = choose_codecs("no_such_encoder", "none", allow_fallback=True)
    assert (fallback.encoder, fallback.hwaccel, len(fallback.notes)) == ("libx264", "none", 1)


@pytest.mark.skipif(encoder_failure("h264_nvenc") is None, reason="this machine has NVENC")
def test_nvenc_and_cuda_without_a_gpu_refuse_or_fall_back() -> None:
    with pytest.raises(CodecUnavailable, match="output video encoder h264_nvenc cannot be used"):
        choose_codecs("h264_nvenc", "none", allow_fallback=False)
    with pytest.raises(CodecUnavailable, match="decode hwaccel cuda cannot be used"):
        choose_codecs("libx264", "cuda", allow_fallback=False)
    settings = SwapSettings(output_video_encoder="hevc_nvenc", decode_hwaccel="cuda")
    fallback = SwapSettings(
        output_video_encoder="hevc_nvenc",
        decode_hwaccel="cuda",
        execution=settings.execution.__class__(allow_cpu_fallback=True),
    )
    with pytest.raises(CodecUnavailable):
        usable_codecs(settings)
    usable = usable_codecs(fallback)
    assert (usable.encoder, usable.hwaccel) == ("libx264", "none")
    assert len(usable.notes) == 2 and "encoded with libx264" in usable.notes[0]
    assert "decoded on the CPU" in usable.notes[1]
    unchanged = usable_codecs(SwapSettings(output_video_encoder="libx265"))
    assert unchanged.encoder == "libx265" and unchanged.notes == ()


@pytest.mark.skipif(encoder_failure("h264_nvenc") is None, reason="this machine has NVENC")
def test_swap_with_nvenc_here_is_one_error_line_or_libx264_with_a_note(
    sample_media, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=6)
    arguments = ["swap", "--source", str(sample_media.source_tom_hanks), "--target", str(clip)]
    arguments += ["--sequential", "--no-analysis-cache", "--output-video-encoder", "h264_nvenc"]
    refused = tmp_path / "refused.mp4"
    assert main([*arguments, "--output", str(refused)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "output video encoder h264_nvenc cannot be used" in error
    assert not refused.exists()
    output, report = tmp_path / "fallback.mp4", tmp_path / "report.json"
    fallback = ["--allow-cpu-fallback", "--output", str(output), "--report", str(report)]
    assert main([*arguments, *fallback]) == 0
    assert "Video: h264" in stream_summary(output)
    assert probe_media(output).frame_count == 6
    notes = json.loads(report.read_text())["notes"]
    assert any("h264_nvenc cannot be used" in note and "libx264" in note for note in notes)


@pytest.mark.skipif(encoder_failure("h264_nvenc") is None, reason="this machine has NVENC")
def test_a_segment_whose_encoder_cannot_open_names_the_cause(tmp_path: Path) -> None:
    # Where this node's probe passed but the encoder still fails, the segment names the cause.
    segment = tmp_path / "nvenc.mp4"
    writer = SegmentEncoder(segment, 64, 48, Fraction(25), encoder="h264_nvenc")
    with pytest.raises(MediaError, match="cannot encode segment") as raised, writer:
        for _ in range(3):
            writer.write(np.zeros((48, 64, 3), np.uint8))
    assert encoder_failure("h264_nvenc") in str(raised.value)
    assert not segment.exists()


def test_swap_renders_with_the_chosen_encoder(
    sample_media, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=6)
    output = tmp_path / "hevc.mp4"
    arguments = ["swap", "--source", str(sample_media.source_tom_hanks), "--target", str(clip)]
    arguments += ["--sequential", "--no-analysis-cache", "--output-video-encoder", "libx265"]
    assert main([*arguments, "--output-video-quality", "60", "--output", str(output)]) == 0
    assert "Video: hevc" in stream_summary(output)
    result = probe_media(output)
    assert (result.frame_count, result.has_audio) == (6, True)


@pytest.mark.usefixtures("local_ray")
def test_ray_actors_encode_every_segment_with_the_chosen_encoder(
    sample_media, tmp_path: Path
) -> None:
    from facefusion_ray.engine.driver import run_swap

    clip = make_clip(tmp_path / "clip.mp4", frames=12)
    output = tmp_path / "vp9.mp4"
    settings = SwapSettings(chunk_frames=6, workers=1, output_video_encoder="libvpx-vp9")
    report = run_swap(
        [sample_media.source_tom_hanks],
        clip,
        output,
        settings,
        show_progress=False,
        work_store=str(tmp_path / "work"),
    )
    assert report.chunks == 2
    assert "Video: vp9" in stream_summary(output)
    result = probe_media(output)
    assert (result.frame_count, result.has_audio) == (12, True)
