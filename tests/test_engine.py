"""Chunked rendering on a real local Ray with real ffmpeg and the embedded models."""

import json
import logging
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from facefusion_ray.cache import AnalysisCache
from facefusion_ray.engine.driver import run_swap
from facefusion_ray.media import probe_media
from facefusion_ray.media.images import read_image
from facefusion_ray.pipeline.chunks import plan_chunks
from facefusion_ray.pipeline.render_preparation import NO_FACE_NOTE
from facefusion_ray.settings import SwapSettings
from tests.media_checks import decoded_frames, psnr
from tests.media_factory import make_clip, run_ffmpeg_cli

pytestmark = pytest.mark.usefixtures("local_ray")


@pytest.fixture(scope="module")
def rendered_sample(sample_media, tmp_path_factory):
    folder = tmp_path_factory.mktemp("render")
    output, report_path = folder / "swapped.mp4", folder / "report.json"
    report = run_swap(
        [sample_media.source_tom_hanks],
        sample_media.target_video,
        output,
        SwapSettings(chunk_frames=64, workers=2),
        report_path=report_path,
        show_progress=False,
    )
    return output, report, json.loads(report_path.read_text())


def test_output_keeps_frame_count_duration_and_audio(sample_media, rendered_sample) -> None:
    output, _, _ = rendered_sample
    source_info, output_info = probe_media(sample_media.target_video), probe_media(output)
    assert output_info.frame_count == source_info.frame_count == 300
    assert output_info.fps == source_info.fps
    assert abs(output_info.duration - source_info.duration) < 1e-3
    assert (output_info.width, output_info.height) == (1280, 720)
    assert output_info.has_audio


def test_report_counts_frames_faces_chunks_and_model_calls(rendered_sample) -> None:
    _, report, on_disk = rendered_sample
    for key in (
        "frames_total",
        "frames_with_faces",
        "faces_swapped",
        "chunks",
        "seconds",
        "model_calls",
    ):
        assert key in on_disk
    assert on_disk["frames_total"] == 300
    assert on_disk["chunks"] == 6  # 300 frames, at most 64 a chunk, balanced over 2 workers
    assert on_disk["frames_with_faces"] == 300
    assert on_disk["faces_swapped"] >= 300
    # Every frame is detected once by the actors; the source image once by the driver.
    assert on_disk["model_calls"]["yunet"] == 300
    assert on_disk["source_model_calls"]["yunet"] == 1
    assert on_disk["cache"] == {"hits": 0, "misses": 300}
    assert report.seconds > 0


def test_far_from_faces_nothing_changes_and_every_face_does(
    sample_media, rendered_sample, detector
) -> None:
    output, _, _ = rendered_sample
    checked = 0
    for index, (before, after) in enumerate(
        zip(decoded_frames(sample_media.target_video), decoded_frames(output), strict=True)
    ):
        if index % 10:
            continue
        faces = detector.detect(before)
        assert faces, f"frame {index} of the sample should show faces"
        far = np.ones(before.shape[:2], dtype=bool)
        for x1, y1, x2, y2 in (face.bbox for face in faces):
            grow_x, grow_y = (x2 - x1) * 0.5, (y2 - y1) * 0.5
            far[
                max(0, int(y1 - grow_y)) : int(y2 + grow_y) + 1,
                max(0, int(x1 - grow_x)) : int(x2 + grow_x) + 1,
            ] = False
        assert psnr(before[far], after[far]) > 40.0
        for x1, y1, x2, y2 in (face.bbox.astype(int) for face in faces):
            region_before = before[max(0, y1) : y2, max(0, x1) : x2].astype(np.int16)
            region_after = after[max(0, y1) : y2, max(0, x1) : x2].astype(np.int16)
            assert np.abs(region_after - region_before).mean() > 4.0
        checked += 1
    assert checked == 30


def test_any_chunk_size_gives_the_same_frames(sample_media, short_group_clip, tmp_path) -> None:
    renders = {}
    for chunk_frames in (1, 7, 64, 1000):
        output = tmp_path / f"chunks-{chunk_frames}.mp4"
        report = run_swap(
            [sample_media.source_tom_hanks],
            short_group_clip,
            output,
            SwapSettings(chunk_frames=chunk_frames, workers=2, output_video_quality=100),
            show_progress=False,
        )
        assert report.frames_total == 40
        renders[chunk_frames] = list(decoded_frames(output))
    reference = renders.pop(1)
    assert len(reference) == 40
    for chunk_frames, frames in renders.items():
        assert len(frames) == 40
        for index, (a, b) in enumerate(zip(reference, frames, strict=True)):
            assert np.array_equal(a, b), f"chunk size {chunk_frames}: frame {index} differs"


def test_a_target_without_faces_comes_back_unchanged(sample_media, tmp_path) -> None:
    target = make_clip(tmp_path / "no_face.mp4", frames=30, size="320x240", audio=False)
    output = tmp_path / "out.mp4"
    report = run_swap(
        [sample_media.source_tom_hanks],
        target,
        output,
        SwapSettings(chunk_frames=8),
        show_progress=False,
    )
    assert report.frames_with_faces == 0 and report.faces_swapped == 0
    assert NO_FACE_NOTE in report.notes
    for before, after in zip(decoded_frames(target), decoded_frames(output), strict=True):
        assert psnr(before, after) > 35.0


def test_a_failed_assembly_fails_the_render_with_its_cause(
    sample_media, tmp_path, monkeypatch
) -> None:
    """The last video is assembled while the job lets go of Ray: its error still counts."""
    from facefusion_ray.engine import job
    from facefusion_ray.errors import FaceFusionRayError

    def full_disk(*args: object) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(job, "assemble_output", full_disk)
    target = make_clip(tmp_path / "no_face.mp4", frames=8, size="320x240", audio=False)
    with pytest.raises(FaceFusionRayError, match=r"assembling .*no space left on device"):
        run_swap(
            [sample_media.source_tom_hanks],
            target,
            tmp_path / "out.mp4",
            SwapSettings(chunk_frames=4),
            show_progress=False,
        )


def test_an_image_target_is_swapped_in_process(sample_media, tmp_path) -> None:
    output = tmp_path / "group_swapped.png"
    report = run_swap(
        [sample_media.source_tom_hanks],
        sample_media.group_photo,
        output,
        SwapSettings(),
        show_progress=False,
    )
    assert report.kind == "image" and report.faces_swapped == 6
    before, after = read_image(sample_media.group_photo), read_image(output)
    assert before.shape == after.shape and not np.array_equal(before, after)


def test_output_suffix_must_match_the_target_kind(sample_media, tmp_path: Path) -> None:
    from facefusion_ray.errors import MediaError

    with pytest.raises(MediaError, match="must end in"):
        run_swap(
            [sample_media.source_tom_hanks],
            sample_media.target_video,
            tmp_path / "out.png",
            SwapSettings(),
            show_progress=False,
        )
    assert not (tmp_path / "out.png").exists()


def test_awkward_video_keeps_its_shape_rate_and_length(sample_media, tmp_path) -> None:
    """29.97 fps, odd size, rotation metadata and no audio, through the whole engine."""
    plain = make_clip(
        tmp_path / "plain.mp4",
        frames=45,
        rate="30000/1001",
        size="161x91",
        audio=False,
        pattern="testsrc",
        video_args=("-c:v", "libx264", "-pix_fmt", "yuv444p"),
    )
    rotated = tmp_path / "rotated.mp4"
    run_ffmpeg_cli("-display_rotation", "-90", "-i", str(plain), "-c", "copy", str(rotated))
    output = tmp_path / "out.mp4"
    run_swap(
        [sample_media.source_tom_hanks],
        rotated,
        output,
        SwapSettings(chunk_frames=10),
        show_progress=False,
    )
    info = probe_media(output)
    assert (info.width, info.height) == (91, 161)
    assert info.to_json_dict()["fps"] == "30000/1001"
    assert info.frame_count == 45
    assert abs(info.duration - 45 * 1001 / 30000) < 1e-3
    assert not info.has_audio
    for before, after in zip(decoded_frames(rotated), decoded_frames(output), strict=True):
        assert psnr(before, after) > 30.0


def test_engine_matches_the_sequential_path_frame_for_frame(
    sample_media, short_group_clip, tmp_path
) -> None:
    settings = SwapSettings(chunk_frames=7, workers=2, output_video_quality=100)
    sources = [sample_media.source_tom_hanks]
    engine = run_swap(
        sources, short_group_clip, tmp_path / "engine.mp4", settings, show_progress=False
    )
    sequential = run_swap(
        sources,
        short_group_clip,
        tmp_path / "sequential.mp4",
        settings,
        show_progress=False,
        sequential=True,
    )
    assert sequential.chunks == 1 and engine.chunks == 6
    assert engine.faces_swapped == sequential.faces_swapped > 0
    for index, (a, b) in enumerate(
        zip(
            decoded_frames(tmp_path / "engine.mp4"),
            decoded_frames(tmp_path / "sequential.mp4"),
            strict=True,
        )
    ):
        assert np.array_equal(a, b), f"frame {index} differs"
    for report in (engine, sequential):
        assert set(report.stage_seconds) >= {"decode", "swap", "encode", "assemble"}
        assert report.peak_memory_bytes["driver"] > 0
        # CPU by process kind: the frame loops and their ffmpeg children, exact; the driver's.
        kinds = ("frame_loop", "ffmpeg_decode", "ffmpeg_encode", "driver", "driver_ffmpeg")
        assert all(report.cpu_seconds[kind] > 0 for kind in kinds), report.cpu_seconds
    assert engine.peak_memory_bytes["actor_0"] > 0
    # The second render of the same frames was served by the analysis cache.
    assert sum(engine.cache.values()) == 40 and sequential.cache["hits"] == 40


def test_chunks_moved_onto_keyframes_render_the_frames_of_one_sequential_pass(
    sample_media, short_group_clip, tmp_path
) -> None:
    target = tmp_path / "gop12.mp4"
    run_ffmpeg_cli(
        "-loglevel", "error", "-i", str(short_group_clip), "-c:v", "libx264", "-crf", "12",
        "-preset", "veryfast", "-g", "12", "-sc_threshold", "0", "-c:a", "copy", str(target),
    )  # fmt: skip
    info = probe_media(target)
    assert info.keyframes == (0, 12, 24, 36)
    planned = plan_chunks(info.frame_count, 7, 2, info.keyframes)
    assert planned != plan_chunks(info.frame_count, 7, 2) and 12 in [c.start for c in planned]
    cache = str(tmp_path / "cache")
    settings = SwapSettings(
        chunk_frames=7, workers=2, output_video_quality=100, analysis_cache=cache
    )
    sources = [sample_media.source_tom_hanks]
    engine = run_swap(sources, target, tmp_path / "engine.mp4", settings, show_progress=False)
    assert engine.cache == {"hits": 0, "misses": 40}
    # One chunk of every frame, reading the analysis the keyframe plan's chunks stored.
    sequential = run_swap(
        sources, target, tmp_path / "one.mp4", settings, show_progress=False, sequential=True
    )
    assert engine.chunks == len(planned) and sequential.cache == {"hits": 40, "misses": 0}
    engine_frames, sequential_frames = (
        decoded_frames(tmp_path / n) for n in ("engine.mp4", "one.mp4")
    )
    for index, (a, b) in enumerate(zip(engine_frames, sequential_frames, strict=True)):
        assert np.array_equal(a, b), f"frame {index} differs"
    assert index == 39


def test_reference_mode_changes_only_the_reference_person(
    sample_media, short_group_clip, tmp_path, detector, recognizer
) -> None:
    from facefusion_ray.analysis.select import FaceSelection, face_distance, sort_faces

    selection = FaceSelection(mode="reference", order="left-right", reference_face_position=2)
    output = tmp_path / "reference.mp4"
    report = run_swap(
        [sample_media.source_tom_hanks],
        short_group_clip,
        output,
        SwapSettings(chunk_frames=10, face_selector=selection, output_video_quality=95),
        show_progress=False,
    )
    assert report.frames_total == 40
    assert report.faces_swapped == 40, "exactly one face (the reference) per frame"
    assert report.model_calls["sface"] > 40 * 5  # every detected face was compared

    first = next(decoded_frames(short_group_clip))
    reference_face = sort_faces(detector.detect(first), "left-right")[2]
    reference = recognizer.embed(first, reference_face.landmarks_5)[1]
    for index, (before, after) in enumerate(
        zip(decoded_frames(short_group_clip), decoded_frames(output), strict=True)
    ):
        if index % 5:
            continue
        faces = detector.detect(before)
        distances = [
            face_distance(recognizer.embed(before, face.landmarks_5)[1], reference)
            for face in faces
        ]
        for face, distance in zip(faces, distances, strict=True):
            x1, y1, x2, y2 = face.bbox
            inset_x, inset_y = (x2 - x1) * 0.2, (y2 - y1) * 0.2
            core = (
                slice(max(0, int(y1 + inset_y)), int(y2 - inset_y)),
                slice(max(0, int(x1 + inset_x)), int(x2 - inset_x)),
            )
            if distance == min(distances):
                assert psnr(before[core], after[core]) < 30.0, f"frame {index}: not swapped"
            else:
                assert psnr(before[core], after[core]) > 38.0, f"frame {index}: bystander swapped"


def test_a_new_source_reuses_the_cached_analysis(sample_media, short_group_clip, tmp_path) -> None:
    first = run_swap(
        [sample_media.source_tom_hanks],
        short_group_clip,
        tmp_path / "tom.mp4",
        SwapSettings(chunk_frames=7, face_detector_score=0.55),
        show_progress=False,
    )
    # Another source and another chunk size: the analysis of every frame is reused.
    second = run_swap(
        [sample_media.source_astronaut],
        short_group_clip,
        tmp_path / "astronaut.mp4",
        SwapSettings(chunk_frames=16, face_detector_score=0.55),
        show_progress=False,
    )
    assert first.cache == {"hits": 0, "misses": 40}
    assert second.cache == {"hits": 40, "misses": 0}
    assert second.model_calls.get("yunet", 0) == 0
    assert second.faces_swapped == first.faces_swapped
    # Both runs check every frame against the cache; only the cold one ran the detector.
    assert first.stage_seconds["fingerprint"] > 0 and second.stage_seconds["fingerprint"] > 0
    assert "detect" in first.stage_seconds and "detect" not in second.stage_seconds
    # A different detector threshold is a different analysis: nothing is reused.
    third = run_swap(
        [sample_media.source_astronaut],
        short_group_clip,
        tmp_path / "threshold.mp4",
        SwapSettings(chunk_frames=16, face_detector_score=0.6),
        show_progress=False,
    )
    assert third.cache == {"hits": 0, "misses": 40}
    assert third.model_calls["yunet"] == 40


def test_cached_frames_unlike_the_decoded_ones_are_analysed_again_and_replaced(
    sample_media, short_group_clip, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = SwapSettings(analysis_cache=str(tmp_path / "cache"))
    render = partial(
        run_swap,
        [sample_media.source_tom_hanks],
        short_group_clip,
        settings=settings,
        show_progress=False,
        sequential=True,
    )
    first = render(output=tmp_path / "first.mp4")
    assert first.cache == {"hits": 0, "misses": 40}
    cache = AnalysisCache(settings.analysis_cache)
    (entry,) = cache.entries()
    # As if another decoder had written frames 10-19: their fingerprints are not ours.
    tampered = [
        replace(record, frame_fingerprint="0" * 64) if 10 <= record.frame_index < 20 else record
        for record in cache.read_entry(entry)
    ]
    cache.remove_entries([entry])
    cache.write(entry.video_fingerprint, entry.analysis_key, tampered)
    with caplog.at_level(logging.WARNING):
        second = render(output=tmp_path / "second.mp4")
    assert second.cache == {"hits": 30, "misses": 10}
    assert second.model_calls["yunet"] == 10
    assert "10 of frames 0-39" in caplog.text and "differ from their cached" in caplog.text
    assert second.faces_swapped == first.faces_swapped
    # The disagreeing chunk was replaced: the next render is served whole from the cache.
    third = render(output=tmp_path / "third.mp4")
    assert third.cache == {"hits": 40, "misses": 0}
