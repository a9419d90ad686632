"""Untouched pixels stay as decoded: frames keep their 4:2:0 planes, only the regions faces touch
go through BGR (in the video's colour matrix), and the output keeps the input's colour tags."""

import subprocess
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from facefusion_ray.cli.main import main
from facefusion_ray.inference.execution import ExecutionConfig
from facefusion_ray.media import SegmentEncoder, iter_frames, probe_media
from facefusion_ray.media.colour_tags import ColourTags, parse_colour_tags
from facefusion_ray.media.decode import DecodedFrame, iter_decoded_frames
from facefusion_ray.media.ffmpeg_tool import ffmpeg_executable
from facefusion_ray.media.plane_edit import PlaneEdit
from facefusion_ray.media.yuv_colour import BT601, BT709, bgr_to_yuv420, yuv420_to_bgr
from facefusion_ray.pipeline.chunk_loop import render_range
from facefusion_ray.pipeline.chunks import Chunk
from facefusion_ray.pipeline.frame_pipeline import FramePipeline
from facefusion_ray.pipeline.job_models import JobModels
from facefusion_ray.pipeline.review_probe import ReviewFrames, ReviewProbe
from facefusion_ray.pipeline.sources import prepare_source_identity
from facefusion_ray.pipeline.stage_clock import StageClock
from facefusion_ray.settings import SwapSettings
from tests.media_checks import psnr
from tests.media_factory import run_ffmpeg_cli

# The clip: 854x480 at 29.97 fps, the group of six above a face-free table.
WIDTH, HEIGHT, RATE = 854, 480, "30000/1001"
FACE_FRAMES, EMPTY_FRAMES = 10, 4
BAND_TOP = 400  # rows below every face's reach (checked), the table with the chips
BT709_FILTER = "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv"


def random_planes(width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(16, 236, size=(height * 3 // 2, width), dtype=np.uint8)


def split(planes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, ...]:
    flat = planes.reshape(-1)
    quarter = width * height // 4
    return (
        flat[: width * height].reshape(height, width),
        flat[width * height : width * height + quarter].reshape(height // 2, width // 2),
        flat[width * height + quarter :].reshape(height // 2, width // 2),
    )


def test_region_conversion_is_opencvs_for_bt601_and_inverts_for_bt709() -> None:
    planes = random_planes(64, 48)
    y, u, v = split(planes, 64, 48)
    whole = cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_I420)
    region = yuv420_to_bgr(y[10:30, 6:40], u[5:15, 3:20], v[5:15, 3:20], BT601)
    assert np.array_equal(region, whole[10:30, 6:40])
    # Colours constant over each 2x2 block survive a round trip to within rounding.
    blocks = cv2.resize(whole[::2, ::2], (64, 48), interpolation=cv2.INTER_NEAREST)
    for matrix in (BT601, BT709):
        error = np.abs(yuv420_to_bgr(*bgr_to_yuv420(blocks, matrix), matrix) - blocks.astype(int))
        assert error.max() <= 2 and error.mean() < 0.6
    # The two matrices disagree on colour: tagging matters.
    assert np.abs(yuv420_to_bgr(y, u, v, BT709).astype(int) - whole).mean() > 2.0


@pytest.mark.parametrize("matrix", [BT601, BT709])
def test_a_pixel_converts_the_same_wherever_it_sits_in_a_row(matrix) -> None:
    """Plane edits convert rectangles widened to whole vectors of OpenCV's row loops; that
    changes nothing only while OpenCV's vector body and its per-pixel row tail agree."""
    planes = random_planes(4096, 256, seed=3)  # rows of whole vectors
    y, u, v = split(planes, 4096, 256)
    wide = yuv420_to_bgr(y, u, v, matrix)

    def narrow(plane: np.ndarray) -> np.ndarray:  # the same samples in rows of 8 (all tail)
        rows, columns = plane.shape[:2]
        pieces = plane.reshape(rows // 2, 2, columns // 8, 8, *plane.shape[2:]).swapaxes(1, 2)
        return pieces.reshape(rows * columns // 8, 8, *plane.shape[2:])

    def half(plane: np.ndarray) -> np.ndarray:
        rows, columns = plane.shape
        return plane.reshape(rows, columns // 4, 4).reshape(rows * columns // 4, 4)

    assert np.array_equal(yuv420_to_bgr(narrow(y), half(u), half(v), matrix), narrow(wide))
    wide_back = bgr_to_yuv420(wide, matrix)
    narrow_back = bgr_to_yuv420(narrow(wide), matrix)
    assert np.array_equal(narrow_back[0], narrow(wide_back[0]))
    for wide_chroma, narrow_chroma in zip(wide_back[1:], narrow_back[1:], strict=True):
        assert np.array_equal(narrow_chroma, half(wide_chroma))


def test_colour_tags_from_ffmpeg_stream_summaries() -> None:
    assert parse_colour_tags("h264 (High), yuv420p(tv, bt709, progressive), 1280x720") == (
        ColourTags("bt709", "bt709", "bt709", "tv")
    )
    assert parse_colour_tags("h264, yuv420p(tv, bt470bg/bt470bg/smpte170m), 720x576") == (
        ColourTags("bt470bg", "bt470bg", "smpte170m", "tv")
    )
    assert parse_colour_tags("h264, yuvj420p(pc, bt709/unknown/unknown)") == (
        ColourTags("bt709", "", "", "pc")
    )
    assert parse_colour_tags("h264 (High), yuv420p(progressive), 160x90") == ColourTags()
    assert not ColourTags(range="pc").planes_convertible


def test_a_plane_edit_writes_back_only_the_pixels_that_changed() -> None:
    width, height = 96, 64
    delivered = bytearray(random_planes(width, height, seed=1).tobytes())
    frame = DecodedFrame(delivered, "yuv420p", width, height, BT709)
    fingerprint = frame.fingerprint()
    unchanged = PlaneEdit(frame, [(10, 10, 50, 40)]).finish()
    assert np.array_equal(unchanged, frame.planes)
    edit = PlaneEdit(frame, [(11, 9, 51, 41), (40, 30, 60, 50)])  # odd edges, overlapping
    assert edit.boxes == [(10, 8, 60, 50)]
    edit.canvas[21:31, 15:25] = (0, 0, 255)  # a red square at odd coordinates
    output = edit.finish()
    before_y, before_u, _ = split(np.asarray(frame.planes), width, height)
    after_y, after_u, after_v = split(output, width, height)
    changed_y = after_y != before_y
    assert (
        changed_y[21:31, 15:25].mean() > 0.9 and not changed_y.sum() - changed_y[21:31, 15:25].sum()
    )
    changed_u = after_u != before_u
    assert not changed_u.sum() - changed_u[10:16, 7:13].sum()  # the square's 2x2 blocks only
    red = yuv420_to_bgr(after_y[22:30, 16:24], after_u[11:15, 8:12], after_v[11:15, 8:12], BT709)
    assert np.abs(red.astype(int) - (0, 0, 255)).max() <= 2
    assert frame.fingerprint() == fingerprint and bytes(delivered) == frame.delivered


@pytest.mark.parametrize(
    ("matrix", "analysed"), [(BT601, False), (BT601, True), (BT709, False)]
)  # fmt: skip
def test_a_plane_edit_equals_converting_the_whole_frame_where_pixels_changed(
    matrix, analysed: bool
) -> None:
    """Rectangles are converted widened (to OpenCV's vector width, clamped at the frame's
    edges): each pixel still comes out as the whole frame's conversion gives it, both ways."""
    width, height = 200, 120  # not a multiple of the vector width
    planes = random_planes(width, height, seed=2)
    frame = DecodedFrame(bytearray(planes.tobytes()), "yuv420p", width, height, matrix)
    if analysed:
        assert frame.pixels is not None  # a cache miss: the analysis view exists
    whole = yuv420_to_bgr(*split(planes, width, height), matrix)
    edit = PlaneEdit(frame, [(3, 5, 53, 41), (150, 61, 199, 119), (60, 90, 70, 100)])
    for x0, y0, x1, y1 in edit.boxes:
        assert np.array_equal(edit.canvas[y0:y1, x0:x1], whole[y0:y1, x0:x1])
    edited = whole.copy()
    for x0, y0, x1, y1 in [(5, 7, 30, 40), (151, 62, 199, 119), (65, 95, 66, 96)]:
        for canvas in (edit.canvas, edited):
            canvas[y0:y1, x0:x1] = 255 - canvas[y0:y1, x0:x1]  # every pixel changes
    output = split(edit.finish(), width, height)
    changed = np.any(edited != whole, axis=2)
    blocks = changed.reshape(height // 2, 2, width // 2, 2).any(axis=(1, 3))
    converted = bgr_to_yuv420(edited, matrix)
    for plane, decoded, new, mask in zip(
        output, split(planes, width, height), converted, (changed, blocks, blocks), strict=True
    ):
        assert np.array_equal(plane, np.where(mask, new, decoded))


def encode_clip(path: Path, frames: Iterator[np.ndarray], colour_filter: str | None) -> Path:
    """BGR frames into H.264 4:2:0 at CRF 18, as a camera file would come."""
    command = [ffmpeg_executable(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    command += ["-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{WIDTH}x{HEIGHT}", "-r", RATE]
    command += ["-i", "pipe:0", *(["-vf", colour_filter] if colour_filter else [])]
    command += ["-c:v", "libx264", "-crf", "18", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
    data = b"".join(frame.tobytes() for frame in frames)
    subprocess.run([*command, str(path)], input=data, check=True)
    return path


@pytest.fixture(scope="module")
def group_frames(sample_media) -> list[np.ndarray]:
    """The group push-in at 854x480, then frames of the table alone (no face)."""
    info = probe_media(sample_media.target_video)
    frames = [
        cv2.resize(frame, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
        for frame in iter_frames(sample_media.target_video, 60, FACE_FRAMES, info)
    ]
    table = frames[-1][BAND_TOP:]
    empty = cv2.resize(table, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)
    return frames + [np.roll(empty, 3 * index, axis=1) for index in range(EMPTY_FRAMES)]


def swap(sample_media, target: Path, output: Path, *extra: str) -> None:
    arguments = ["swap", "--source", str(sample_media.source_tom_hanks), "--target", str(target)]
    arguments += ["--output", str(output), "--sequential", "--no-analysis-cache", *extra]
    assert main(arguments) == 0


def decoded_planes(path: Path) -> list[np.ndarray]:
    info = probe_media(path)
    return [
        np.asarray(frame.planes).copy()
        for frame in iter_decoded_frames(path, 0, info.frame_count, info)
    ]


def test_the_face_free_band_is_at_the_re_encode_floor(
    sample_media, group_frames, tmp_path: Path
) -> None:
    target = encode_clip(tmp_path / "group.mp4", iter(group_frames[:FACE_FRAMES]), None)
    output = tmp_path / "swapped.mp4"
    swap(sample_media, target, output)
    info = probe_media(target)
    # The floor: the decoded planes alone, encoded as the render encodes them.
    planes_only = tmp_path / "planes_only.mp4"
    with SegmentEncoder(planes_only, WIDTH, HEIGHT, Fraction(30000, 1001)) as encoder:
        for planes in decoded_planes(target):
            encoder.write(planes)
    decoded = list(iter_frames(target, 0, info.frame_count, info))
    floor = list(iter_frames(planes_only, 0, info.frame_count, probe_media(planes_only)))
    swapped = list(iter_frames(output, 0, info.frame_count, probe_media(output)))
    band = np.s_[BAND_TOP:]
    floor_db = psnr(np.stack(decoded)[:, band], np.stack(floor)[:, band])
    output_db = psnr(np.stack(decoded)[:, band], np.stack(swapped)[:, band])
    assert floor_db > 42.0  # a BGR round trip through the encoder stays near 39.5 dB here
    assert output_db >= floor_db - 1.0
    # And the faces were swapped.
    face_rows = np.s_[: BAND_TOP - 100]
    assert psnr(np.stack(decoded)[:, face_rows], np.stack(swapped)[:, face_rows]) < 30.0


def test_lossless_output_keeps_decoded_planes_and_bt709_tags(
    sample_media, group_frames, tmp_path: Path
) -> None:
    target = encode_clip(tmp_path / "group709.mp4", iter(group_frames), BT709_FILTER)
    assert probe_media(target).colour == ColourTags("bt709", "bt709", "bt709", "tv")
    output = tmp_path / "swapped709.mp4"
    swap(sample_media, target, output, "--output-video-quality", "100")
    assert probe_media(output).colour == ColourTags("bt709", "bt709", "bt709", "tv")
    before, after = decoded_planes(target), decoded_planes(output)
    assert len(before) == len(after) == FACE_FRAMES + EMPTY_FRAMES
    for index in range(FACE_FRAMES, FACE_FRAMES + EMPTY_FRAMES):
        assert np.array_equal(before[index], after[index]), f"frame {index} without faces"
    for index in range(FACE_FRAMES):
        luma_before, luma_after = before[index][:HEIGHT], after[index][:HEIGHT]
        assert np.array_equal(luma_before[BAND_TOP:], luma_after[BAND_TOP:])
        assert np.abs(luma_before.astype(int) - luma_after).mean() > 1.0  # faces swapped


@pytest.fixture(scope="module")
def pipeline(sample_media, detector) -> FramePipeline:
    settings = SwapSettings()
    models = JobModels(ExecutionConfig())
    identity = prepare_source_identity([sample_media.source_tom_hanks], detector)
    return FramePipeline(
        settings, models.plan_for(settings), identity, StageClock(), models.sessions_for(settings)
    )


def test_swapped_regions_match_the_whole_frame_path(
    pipeline: FramePipeline, group_frames, tmp_path: Path
) -> None:
    """Against converting the whole frame (OpenCV BT.601 both ways, the path before planes):
    every value is the whole-frame path's or the decoded one, and outside the faces' reach the
    decoded one, where the whole-frame path shifts some."""
    target = encode_clip(tmp_path / "group.mp4", iter(group_frames[:3]), None)
    info = probe_media(target)
    for frame in iter_decoded_frames(target, 0, 3, info):
        faces = pipeline.analyse(frame.pixels)
        chosen = pipeline.choose(faces)
        boxes = pipeline.reach(faces, chosen, (HEIGHT, WIDTH, 3))
        assert boxes and max(box[3] for box in boxes) <= BAND_TOP
        whole = frame.pixels.copy()
        pipeline.apply(whole, faces)
        old = cv2.cvtColor(whole, cv2.COLOR_BGR2YUV_I420)
        edit = PlaneEdit(frame, boxes)
        pipeline.apply(edit.canvas, faces, chosen)
        new, decoded = edit.finish(), np.asarray(frame.planes)
        assert np.all((new == old) | (new == decoded))
        reached = np.zeros((HEIGHT, WIDTH), dtype=bool)
        for x0, y0, x1, y1 in edit.boxes:
            reached[y0:y1, x0:x1] = True
        luma_new, luma_old, luma_decoded = new[:HEIGHT], old[:HEIGHT], decoded[:HEIGHT]
        assert np.array_equal(luma_new[~reached], luma_decoded[~reached])
        assert not np.array_equal(luma_old[~reached], luma_decoded[~reached])
        assert np.mean(luma_new[reached] == luma_old[reached]) > 0.99
        assert np.mean(new[HEIGHT:] == old[HEIGHT:]) > 0.99


def test_a_reviewed_render_writes_the_same_pixels(
    pipeline: FramePipeline, group_frames, tmp_path: Path
) -> None:
    """The A/B review looks at whole frames; what is encoded stays the faces' regions alone."""
    target = encode_clip(tmp_path / "group.mp4", iter(group_frames[FACE_FRAMES - 3 :]), None)
    info = probe_media(target)
    settings = SwapSettings(output_video_quality=100)
    outputs = []
    for review in (None, ReviewProbe(ReviewFrames((0,), (1,)), None)):
        segment = tmp_path / f"segment-{review is None}.mp4"
        chunk = Chunk(0, 0, info.frame_count)
        render_range(
            pipeline, StageClock(), settings, str(target), info, chunk, segment, None, None, review
        )
        outputs.append(decoded_planes(segment))
        if review is not None:
            assert review.result.thumbnails and 0 in review.result.shots
    for plain, reviewed in zip(*outputs, strict=True):
        assert np.array_equal(plain, reviewed)
    assert np.array_equal(outputs[0][-1], decoded_planes(target)[-1])  # no face: as decoded


@pytest.mark.parametrize(
    ("pixel_format", "size"), [("yuv444p", "96x64"), ("yuv444p", "97x65")]
)  # fmt: skip
def test_frames_swscale_converts_keep_their_colours_and_bt709_tags(
    tmp_path: Path, pixel_format: str, size: str
) -> None:
    """4:4:4 and odd sizes cross the pipes as BGR: the encoder turns them back in the input's
    matrix (its own conversion for 4:2:0, swscale for 4:4:4), so colours do not shift."""
    target = tmp_path / "tagged.mp4"
    width, height = (int(side) for side in size.split("x"))
    # Smooth colours, constant over 2x2 blocks, so 4:2:0 loses nothing but rounding.
    smooth = f"scale={width // 2}:{height // 2},gblur=sigma=2,scale={width}:{height}:flags=neighbor"
    run_ffmpeg_cli(
        *("-loglevel", "error", "-f", "lavfi", "-i", f"testsrc=size={size}:rate=25:duration=0.2"),
        *("-vf", f"{smooth},{BT709_FILTER}", "-c:v", "libx264", "-qp", "0"),
        *("-pix_fmt", pixel_format, str(target)),
    )
    info = probe_media(target)
    assert info.colour.matrix == BT709
    frames = list(iter_decoded_frames(target, 0, info.frame_count, info))
    assert frames[0].planes is None
    segment = tmp_path / "segment.mp4"
    assert info.fps is not None
    with SegmentEncoder(segment, info.width, info.height, info.fps, 100, colour=info.colour) as out:
        for frame in frames:
            out.write(frame.pixels)
    output = probe_media(segment)
    assert output.colour == info.colour
    for before, after in zip(frames, iter_decoded_frames(segment, 0, 5, output), strict=True):
        if after.planes is None:  # odd size: 4:4:4 out, through swscale back
            pixels = after.pixels
        else:  # 4:2:0 out: each chroma sample over its block, in the tagged matrix
            pixels = yuv420_to_bgr(*split(after.planes, info.width, info.height), after.matrix)
        assert np.abs(before.pixels.astype(int) - pixels).mean() < 0.5
