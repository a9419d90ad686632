"""Media layer against the real bundled ffmpeg, on tiny generated clips."""

from __future__ import annotations

import hashlib
import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from facefusion_ray.errors import MediaError
from facefusion_ray.media import (
    MediaInfo,
    SegmentEncoder,
    assemble_video,
    frame_fingerprint,
    iter_frames,
    probe_media,
    quality_to_crf,
    read_image,
    segment_frame_count,
    write_image_atomic,
)
from facefusion_ray.media.decode import iter_decoded_frames
from facefusion_ray.media.encode import SEGMENT_SUFFIX

try:
    from media_checks import frames_decoded
    from media_factory import (
        container_summary_facts,
        frame_index,
        make_clip,
        make_indexed_clip,
        run_ffmpeg_cli,
        stream_summary,
    )
except ImportError:  # tests/ became a package
    from tests.media_checks import frames_decoded
    from tests.media_factory import (
        container_summary_facts,
        frame_index,
        make_clip,
        make_indexed_clip,
        run_ffmpeg_cli,
        stream_summary,
    )


def decode_all(path: Path, info: MediaInfo | None = None) -> list[np.ndarray]:
    info = info or probe_media(path)
    return list(iter_frames(path, 0, info.frame_count, info))


def encode_segments(
    frames: list[np.ndarray], sizes: list[int], folder: Path, fps: Fraction, quality: int
) -> list[Path]:
    assert sum(sizes) == len(frames)
    height, width = frames[0].shape[:2]
    segments: list[Path] = []
    position = 0
    for number, size in enumerate(sizes):
        segment = folder / f"segment_{number:04d}.mp4"
        with SegmentEncoder(segment, width, height, fps, quality=quality) as encoder:
            for frame in frames[position : position + size]:
                encoder.write(frame)
        assert encoder.frames_written == size
        position += size
        segments.append(segment)
    return segments


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if ".partial-" in path.name)


@pytest.fixture(scope="module")
def clip_30fps_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip30") / "clip.mp4", frames=60, rate="30")


@pytest.fixture(scope="module")
def ntsc_clip_with_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ntsc") / "ntsc.mp4"
    return make_clip(path, frames=100, rate="30000/1001", size="96x64")


def test_quality_to_crf_matches_facefusion() -> None:
    assert quality_to_crf(100) == 0
    assert quality_to_crf(80) == 10
    assert quality_to_crf(0) == 51
    with pytest.raises(ValueError):
        quality_to_crf(101)


def test_probe_30fps_clip_with_audio(clip_30fps_audio: Path) -> None:
    info = probe_media(clip_30fps_audio)
    assert info.to_json_dict() == {
        "path": str(clip_30fps_audio),
        "kind": "video",
        "width": 160,
        "height": 90,
        "fps": "30/1",
        "frame_count": 60,
        "duration": 2.0,
        "has_audio": True,
        "rotation": 0,
        "video_codec": "h264",
        "constant_frame_rate": True,
        "pixel_format": "yuv420p",
        "color_space": "",
        "color_primaries": "",
        "color_trc": "",
        "color_range": "",
        "keyframes": [0],  # x264's default group of pictures is longer than the clip
    }


@pytest.mark.parametrize("container", ["mp4", "mkv"])
@pytest.mark.parametrize(
    ("rate", "expected"),
    [("30000/1001", "30000/1001"), ("24000/1001", "24000/1001"), ("25", "25/1"),
     ("60000/1001", "60000/1001"), ("30", "30/1")],
)  # fmt: skip
def test_probe_exact_rate_and_count(
    tmp_path: Path, container: str, rate: str, expected: str
) -> None:
    # Matroska stores milliseconds, so its rate must be recovered by snapping.
    path = make_clip(tmp_path / f"clip.{container}", frames=47, rate=rate, size="64x48")
    info = probe_media(path)
    assert info.to_json_dict()["fps"] == expected
    assert info.frame_count == 47
    assert info.duration == pytest.approx(47 / Fraction(expected), abs=1e-9)
    assert len(decode_all(path, info)) == 47


@pytest.fixture(scope="module")
def odd_size_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 frames of 321x241 in 4:4:4: an odd size, which crosses the pipes as BGR."""
    return make_clip(
        tmp_path_factory.mktemp("odd") / "odd.mp4",
        frames=12,
        size="321x241",
        pattern="testsrc",
        video_args=("-c:v", "libx264", "-pix_fmt", "yuv444p"),
    )


def test_odd_size_survives_probe_decode_encode_and_assemble(
    tmp_path: Path, odd_size_clip: Path
) -> None:
    source = odd_size_clip
    info = probe_media(source)
    assert (info.width, info.height) == (321, 241)
    frames = decode_all(source, info)
    assert {frame.shape for frame in frames} == {(241, 321, 3)}
    assert info.fps is not None
    segments = encode_segments(frames, [5, 7], tmp_path, info.fps, quality=100)
    output = tmp_path / "odd_out.mp4"
    assemble_video(segments, info.fps, output, source)
    result = probe_media(output)
    assert (result.width, result.height, result.frame_count) == (321, 241, 12)
    # Lossless 4:4:4 keeps every pixel; only BGR<->YUV rounding remains.
    for decoded, original in zip(decode_all(output), frames, strict=True):
        assert np.abs(decoded.astype(int) - original).max() <= 2


def test_clip_without_audio_assembles_without_audio(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "silent.mp4", frames=20, audio=False)
    info = probe_media(source)
    assert info.has_audio is False
    assert info.fps is not None
    segments = encode_segments(decode_all(source, info), [20], tmp_path, info.fps, quality=80)
    output = tmp_path / "silent_out.mp4"
    assemble_video(segments, info.fps, output, source)
    assert probe_media(output).has_audio is False
    assert "Audio:" not in stream_summary(output)


def test_rotation_metadata_swaps_display_size(tmp_path: Path) -> None:
    plain = make_clip(tmp_path / "plain.mp4", frames=10, size="160x90")
    rotated = tmp_path / "rotated.mp4"
    # A phone held upright: the display matrix turns the stored landscape frames by -90 deg.
    run_ffmpeg_cli("-display_rotation", "-90", "-i", str(plain), "-c", "copy", str(rotated))
    info = probe_media(rotated)
    assert (info.width, info.height, info.rotation) == (90, 160, 90)
    frames = list(iter_frames(rotated, 3, 2, info))
    assert [frame.shape for frame in frames] == [(160, 90, 3), (160, 90, 3)]


# A keyframe every 10 frames, so ranges start on keyframes and between them.
GOP_10 = ("-c:v", "libx264", "-qp", "0", "-g", "10", "-sc_threshold", "0")
INDEXED_VARIANTS = {
    # name: (file name, make_indexed_clip keyword arguments)
    "mp4_bframes": ("indexed.mp4", {"rate": "25", "video_args": GOP_10}),
    # Millisecond timestamps put most keyframes off the fps grid: only 0, 30, 60 are on it.
    "mkv_ntsc_ms_timestamps": ("indexed.mkv", {"rate": "30000/1001", "video_args": GOP_10}),
    "mpegts_decoded_from_start": ("indexed.ts", {"rate": "25", "video_args": GOP_10}),
    # Video starts 0.1 s after the audio, so -ss must be offset by the video's own start.
    "mp4_video_delayed": ("delayed.mp4", {
        "rate": "30", "audio": True, "before_video_input": ("-itsoffset", "0.1"),
        "video_args": (*GOP_10, "-c:a", "aac")}),
    # A 0.3 s pause after frame 30, as phones produce: frame i is no longer at i/fps.
    "mp4_variable_rate": ("vfr.mp4", {
        "rate": "25", "extra_filter": "settb=1/25000,setpts=(N/25+gte(N\\,30)*0.3)/TB",
        "video_args": (*GOP_10, "-fps_mode", "passthrough")}),
}  # fmt: skip


@pytest.fixture(scope="module", params=sorted(INDEXED_VARIANTS))
def indexed_clip(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    file_name, options = INDEXED_VARIANTS[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    return make_indexed_clip(folder / file_name, frames=75, **options)


def test_iter_frames_is_frame_exact_for_any_range(indexed_clip: Path) -> None:
    info = probe_media(indexed_clip)
    assert info.frame_count == 75
    assert info.constant_frame_rate == (indexed_clip.name != "vfr.mp4")
    full = decode_all(indexed_clip, info)
    assert [frame_index(frame) for frame in full] == list(range(75))
    full_prints = [frame_fingerprint(frame) for frame in full]
    expected_keyframes = (0, 30, 60) if indexed_clip.suffix == ".mkv" else tuple(range(0, 75, 10))
    assert info.keyframes == expected_keyframes
    ranges = [(0, 1), (0, 4), (1, 3), (2, 1), (30, 2), (33, 9), (40, 1), (64, 11), (74, 1)]
    ranges += [(keyframe, 3) for keyframe in range(10, 75, 10)]  # on keyframes and off the grid
    for start, count in ranges:
        frames = list(iter_frames(indexed_clip, start, count, info))
        assert [frame_index(frame) for frame in frames] == list(range(start, start + count))
        assert [frame_fingerprint(f) for f in frames] == full_prints[start : start + count]
    # The cache's fingerprints, of the decoder's bytes, agree across ranges the same way.
    delivered = [frame.fingerprint() for frame in iter_decoded_frames(indexed_clip, 0, 75, info)]
    for start, count in ranges:
        frames_in_range = iter_decoded_frames(indexed_clip, start, count, info)
        assert [f.fingerprint() for f in frames_in_range] == delivered[start : start + count]


def test_a_range_starting_on_a_keyframe_decodes_no_frame_before_it(
    indexed_clip: Path, started_ffmpegs: list[subprocess.Popen[bytes]]
) -> None:
    if indexed_clip.suffix == ".ts":
        pytest.skip("MPEG-TS is decoded from its start")
    info = probe_media(indexed_clip)

    def decoded(start: int) -> int:
        started_ffmpegs.clear()
        frames = iter_frames(indexed_clip, start, 3, info)
        assert [frame_index(frame) for frame in frames] == [start, start + 1, start + 2]
        return frames_decoded(started_ffmpegs[-1].args)

    keyframe = info.keyframes[1]
    # About as many as from the first frame: the range, and what ffmpeg decoded ahead when
    # it stopped (5-7 frames here), not the 10 of the group of pictures before.
    assert decoded(keyframe) < decoded(0) + 5
    assert decoded(keyframe + 5) >= decoded(keyframe) + 3  # between keyframes: pre-roll


def test_probe_lists_the_keyframes_of_a_known_group_of_pictures(tmp_path: Path) -> None:
    def keyframes(name: str, *video_args: str) -> tuple[int, ...]:
        args = ("-c:v", "libx264", "-pix_fmt", "yuv420p", *video_args)
        return probe_media(make_clip(tmp_path / name, frames=50, video_args=args)).keyframes

    assert keyframes("gop12.mp4", "-g", "12", "-sc_threshold", "0") == (0, 12, 24, 36, 48)
    assert keyframes("gop12.mov", "-g", "12", "-sc_threshold", "0") == (0, 12, 24, 36, 48)
    assert keyframes("intra.mp4", "-g", "1") == ()  # every frame: nothing to plan around
    assert keyframes("mjpeg.mkv", "-c:v", "mjpeg") == ()


def test_iter_frames_rejects_ranges_outside_the_video(clip_30fps_audio: Path) -> None:
    info = probe_media(clip_30fps_audio)
    for start, count in [(-1, 2), (59, 2), (0, 61)]:
        with pytest.raises(ValueError):
            iter_frames(clip_30fps_audio, start, count, info)


def test_iter_frames_stops_ffmpeg_when_consumer_stops(
    clip_30fps_audio: Path, started_ffmpegs: list[subprocess.Popen[bytes]]
) -> None:
    started = started_ffmpegs
    info = probe_media(clip_30fps_audio)
    frames = iter_frames(clip_30fps_audio, 0, 60, info)
    first = next(frames)
    assert first.shape == (90, 160, 3) and first.flags.writeable
    frames.close()  # type: ignore[attr-defined]
    assert started and all(process.returncode is not None for process in started)


def test_truncated_files_raise_media_error(tmp_path: Path) -> None:
    # MP4 writes its index last, so half a file has none: probing must fail.
    whole_mp4 = make_clip(tmp_path / "whole.mp4", frames=90, audio=False)
    cut_mp4 = tmp_path / "cut.mp4"
    cut_mp4.write_bytes(whole_mp4.read_bytes()[: whole_mp4.stat().st_size // 2])
    with pytest.raises(MediaError, match=r"cut\.mp4"):
        probe_media(cut_mp4)
    # A file cut after probing: decoding must report where it ended, not return fewer frames.
    mkv = make_clip(tmp_path / "later_cut.mkv", frames=90, audio=False)
    info = probe_media(mkv)
    mkv.write_bytes(mkv.read_bytes()[: mkv.stat().st_size // 2])
    with pytest.raises(MediaError, match=r"truncated video: .*later_cut\.mkv ended at frame \d+"):
        decode_all(mkv, info)


def test_not_media_raises_media_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    audio_only = tmp_path / "tone.wav"
    run_ffmpeg_cli("-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=0.5", str(audio_only))
    cases = {
        text: "not a video or image",
        tmp_path / "missing.mp4": "file not found",
        tmp_path: "is a directory",
        empty: "empty file",
        audio_only: "no video stream",
    }
    for path, message in cases.items():
        with pytest.raises(MediaError, match=message) as caught:
            probe_media(path)
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(MediaError, match="not an image"):
        read_image(text)


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
def test_lossless_segments_assemble_to_exact_video_with_audio(
    tmp_path: Path, ntsc_clip_with_audio: Path, suffix: str
) -> None:
    source = probe_media(ntsc_clip_with_audio)
    assert source.fps == Fraction(30000, 1001) and source.has_audio
    frames = decode_all(ntsc_clip_with_audio, source)
    segments = encode_segments(frames, [1, 7, 64, 28], tmp_path, source.fps, quality=100)
    assert [segment_frame_count(segment) for segment in segments] == [1, 7, 64, 28]
    output = tmp_path / f"result{suffix}"
    assemble_video(segments, source.fps, output, ntsc_clip_with_audio)
    result = probe_media(output)
    assert result.frame_count == 100
    assert result.fps == Fraction(30000, 1001)
    assert result.duration == pytest.approx(100 * 1001 / 30000, abs=1e-3)
    assert result.has_audio
    container_duration, _ = container_summary_facts(output)
    assert container_duration == pytest.approx(100 * 1001 / 30000, abs=0.03)  # audio trimmed
    single_folder = tmp_path / "single"
    single_folder.mkdir()
    [single] = encode_segments(frames, [100], single_folder, source.fps, quality=100)
    assert [frame_fingerprint(f) for f in decode_all(output)] == [
        frame_fingerprint(f) for f in decode_all(single)
    ]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(("rate", "reported_rate"), [("30000/1001", "29.97"), ("30", "30")])
def test_lossy_b_frame_segments_keep_timestamps_and_order(
    tmp_path: Path, rate: str, reported_rate: str
) -> None:
    source = make_clip(tmp_path / "source.mkv", frames=60, rate=rate, size="96x64", audio=False)
    info = probe_media(source)
    assert info.fps == Fraction(rate)
    # Short segments have no B-frame delay while long ones do, and MP4 rounds edit lists to
    # milliseconds: both used to shift or reorder timestamps at segment joins.
    frames = decode_all(source, info)
    segments = encode_segments(frames, [5, 1, 2, 3, 30, 19], tmp_path, info.fps, quality=60)
    output = tmp_path / "lossy.mp4"
    assemble_video(segments, info.fps, output, None)
    result = probe_media(output)
    # An exact rate here means every frame's timestamp is exactly one frame after the last.
    assert (result.frame_count, result.fps, result.has_audio) == (60, info.fps, False)
    # Decode timestamps must be evenly spaced too, or players see a wrong rate and length.
    duration, reported = container_summary_facts(output)
    assert reported == f"{reported_rate} fps"
    assert duration == pytest.approx(60 / Fraction(rate), abs=0.006)
    expected = [frame_fingerprint(f) for segment in segments for f in decode_all(segment)]
    assert [frame_fingerprint(f) for f in decode_all(output)] == expected


def test_audio_the_container_refuses_is_reencoded(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "alaw.mkv", frames=30, audio_args=("-c:a", "pcm_alaw"))
    info = probe_media(source)
    assert info.fps is not None and info.has_audio
    segments = encode_segments(decode_all(source, info), [30], tmp_path, info.fps, quality=50)
    output = tmp_path / "alaw_out.mp4"
    assemble_video(segments, info.fps, output, source)
    assert probe_media(output).frame_count == 30
    assert "Audio: aac" in stream_summary(output)


def test_segment_encoder_leaves_nothing_on_exception(tmp_path: Path) -> None:
    segment = tmp_path / "segment.mp4"
    frame = np.zeros((48, 64, 3), dtype=np.uint8)
    fps = Fraction(25)
    with (
        pytest.raises(RuntimeError, match="worker died"),
        SegmentEncoder(segment, 64, 48, fps) as encoder,
    ):
        encoder.write(frame)
        encoder.write(frame)
        raise RuntimeError("worker died")
    assert not segment.exists()
    with pytest.raises(MediaError, match="no frames"), SegmentEncoder(segment, 64, 48, fps):
        pass
    with pytest.raises(ValueError, match="shape"), SegmentEncoder(segment, 64, 48, fps) as encoder:
        encoder.write(np.zeros((48, 65, 3), dtype=np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_assemble_failure_leaves_no_output(tmp_path: Path, clip_30fps_audio: Path) -> None:
    info = probe_media(clip_30fps_audio)
    assert info.fps is not None
    good = encode_segments(decode_all(clip_30fps_audio, info)[:10], [10], tmp_path, info.fps, 80)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(7).integers(0, 256, 50_000, np.uint8).tobytes())
    output = tmp_path / "never.mp4"
    with pytest.raises(MediaError, match=r"garbage\.mp4"):
        assemble_video([good[0], garbage], info.fps, output, clip_30fps_audio)
    # ffmpeg itself failing (it cannot create the file) must also surface as MediaError.
    with pytest.raises(MediaError, match="cannot assemble"):
        assemble_video(good, info.fps, tmp_path / "no_such_dir" / "out.mp4", None)
    with pytest.raises(MediaError, match="unsupported output container"):
        assemble_video(good, info.fps, tmp_path / "out.avi", None)
    assert not output.exists()
    assert leftovers(tmp_path) == []


def test_images_read_write_probe_and_decode(tmp_path: Path) -> None:
    image = np.zeros((30, 41, 3), dtype=np.uint8)
    image[:, :20] = (255, 0, 0)
    image[10:, 20:] = (0, 0, 255)
    path = tmp_path / "bild_ä_😀.png"
    write_image_atomic(path, image)
    assert np.array_equal(read_image(path), image)
    assert leftovers(tmp_path) == []
    info = probe_media(path)
    assert info.to_json_dict() == {
        "path": str(path),
        "kind": "image",
        "width": 41,
        "height": 30,
        "fps": None,
        "frame_count": 1,
        "duration": 0.0,
        "has_audio": False,
        "rotation": 0,
        "video_codec": "png",
        "constant_frame_rate": True,
        "pixel_format": "",
        "color_space": "",
        "color_primaries": "",
        "color_trc": "",
        "color_range": "",
        "keyframes": [],
    }
    [frame] = list(iter_frames(path, 0, 1, info))
    assert np.array_equal(frame, image)
    jpeg = tmp_path / "photo.jpg"
    write_image_atomic(jpeg, image)
    assert probe_media(jpeg).kind == "image"


def test_frame_fingerprint_covers_shape_and_pixels() -> None:
    frame = np.arange(2 * 6 * 3, dtype=np.uint8).reshape(2, 6, 3)
    assert frame_fingerprint(frame) == frame_fingerprint(frame.copy())
    assert frame_fingerprint(frame) != frame_fingerprint(frame.reshape(6, 2, 3))
    changed = frame.copy()
    changed[1, 5, 2] ^= 1
    assert frame_fingerprint(frame) != frame_fingerprint(changed)
    wide = np.zeros((2, 12, 3), dtype=np.uint8)
    wide[:, ::2] = frame
    assert frame_fingerprint(wide[:, ::2]) == frame_fingerprint(frame)  # non-contiguous view


def test_cache_fingerprint_hashes_the_4_2_0_planes_the_decoder_delivers(
    clip_30fps_audio: Path, odd_size_clip: Path
) -> None:
    info = probe_media(clip_30fps_audio)
    decoded = next(iter(iter_decoded_frames(clip_30fps_audio, 3, 1, info)))
    height, width = decoded.pixels.shape[:2]
    # Half the bytes of the BGR frame: Y at full size, U and V at a quarter each.
    assert decoded.pixel_format == "yuv420p" and len(decoded.delivered) == width * height * 3 // 2
    planes = np.frombuffer(decoded.delivered, np.uint8).reshape(height * 3 // 2, width)
    assert np.array_equal(cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_I420), decoded.pixels)
    expected = hashlib.sha256(f"yuv420p:{width}x{height}".encode() + bytes(decoded.delivered))
    assert decoded.fingerprint() == expected.hexdigest()
    # Odd sizes cross the pipe as BGR, and the fingerprint covers those bytes instead.
    odd = odd_size_clip
    first = next(iter(iter_decoded_frames(odd, 0, 1, probe_media(odd))))
    assert first.pixel_format == "bgr24"
    assert bytes(first.delivered) == first.pixels.tobytes()
    assert (
        first.fingerprint() == hashlib.sha256(b"bgr24:321x241" + first.pixels.tobytes()).hexdigest()
    )


@pytest.mark.parametrize("size", [(320, 240), (161, 91)])
def test_encode_decode_round_trip_does_not_shift_colours(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    """swscale's default conversion darkened every round trip by ~2 levels; ours must not."""
    width, height = size
    rng = np.random.default_rng(7)
    smooth = cv2.resize(rng.integers(30, 225, (12, 16, 3), dtype=np.uint8), (width, height))
    frames = [np.roll(smooth, shift, axis=1) for shift in range(5)]
    segment = tmp_path / f"round_trip{SEGMENT_SUFFIX}"
    with SegmentEncoder(segment, width, height, Fraction(25), quality=100) as encoder:
        for frame in frames:
            encoder.write(frame)
    decoded = list(iter_frames(segment, 0, len(frames), probe_media(segment)))
    for before, after in zip(frames, decoded, strict=True):
        assert abs(float(before.mean()) - float(after.mean())) < 0.25
        assert np.abs(before.astype(np.int16) - after).mean() < 3.0  # 4:2:0 chroma loss
