"""The command line as a user meets it: JSON from probe, one clear line for bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from facefusion_ray.media.ffmpeg_tool import ffmpeg_executable


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    return subprocess.run(
        [sys.executable, "-m", "facefusion_ray", *map(str, args)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    assert expected in errors[0], errors[0]
    assert "Traceback" not in result.stderr


def test_probe_prints_the_sample_video_properties(sample_media) -> None:
    result = run_cli("probe", sample_media.target_video)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["width"] == 1280 and info["height"] == 720
    assert info["fps"] == "30/1"
    assert info["frame_count"] == 300
    assert abs(info["duration"] - 10.0) < 1e-3
    assert info["has_audio"] is True


def swap_args(source: Path, target: Path, output: Path) -> list[str | Path]:
    return ["swap", "--source", source, "--target", target, "--output", output, "--no-progress"]


def test_missing_target(sample_media, tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    result = run_cli(*swap_args(sample_media.source_tom_hanks, tmp_path / "nope.mp4", output))
    assert_one_line_error(result, "nope.mp4")
    assert not output.exists()


def test_target_that_is_not_media(sample_media, tmp_path: Path) -> None:
    target = tmp_path / "notes.mp4"
    target.write_text("this is not a video\n" * 100)
    output = tmp_path / "out.mp4"
    result = run_cli(*swap_args(sample_media.source_tom_hanks, target, output))
    assert_one_line_error(result, "notes.mp4")
    assert not output.exists()


def test_target_with_zero_video_frames(sample_media, tmp_path: Path) -> None:
    target = tmp_path / "audio_only.mp4"
    subprocess.run(
        [
            ffmpeg_executable(),
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=d=1",
            "-c:a",
            "aac",
            str(target),
        ],
        check=True,
    )
    output = tmp_path / "out.mp4"
    result = run_cli(*swap_args(sample_media.source_tom_hanks, target, output))
    assert_one_line_error(result, "audio_only.mp4")
    assert not output.exists()


def test_truncated_target(sample_media, tmp_path: Path) -> None:
    data = sample_media.target_video.read_bytes()
    target = tmp_path / "truncated.mp4"
    target.write_bytes(data[: len(data) // 2])
    output = tmp_path / "out.mp4"
    result = run_cli(*swap_args(sample_media.source_tom_hanks, target, output))
    assert_one_line_error(result, "truncated.mp4")
    assert not output.exists()
    assert not list(tmp_path.glob(".out.mp4*")), "temporary segments were left behind"


def test_source_without_a_face(sample_media, tmp_path: Path) -> None:
    source = tmp_path / "wall.png"
    cv2.imwrite(str(source), np.full((200, 200, 3), 128, dtype=np.uint8))
    output = tmp_path / "out.mp4"
    result = run_cli(*swap_args(source, sample_media.target_video, output))
    assert_one_line_error(result, "no face found in source image")
    assert not output.exists()


def test_source_that_is_a_folder(sample_media, tmp_path: Path) -> None:
    folder = tmp_path / "faces"
    folder.mkdir()
    output = tmp_path / "out.mp4"
    result = run_cli(*swap_args(folder, sample_media.target_video, output))
    assert_one_line_error(result, "faces")
    assert not output.exists()


def test_out_of_range_option_is_a_clear_error(sample_media, tmp_path: Path) -> None:
    result = run_cli(
        *swap_args(sample_media.source_tom_hanks, sample_media.target_video, tmp_path / "out.mp4"),
        "--output-video-quality",
        "101",
    )
    assert_one_line_error(result, "quality")


def test_models_list_on_a_fresh_install(tmp_path: Path) -> None:
    environment = {**os.environ, "FACEFUSION_RAY_CACHE": str(tmp_path / "fresh-cache")}
    environment.pop("FACEFUSION_RAY_MODEL_STORE", None)
    result = subprocess.run(
        [sys.executable, "-m", "facefusion_ray", "models", "list", "--json"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    for embedded in ("yunet", "sface"):
        assert rows[embedded]["present"] and rows[embedded]["verified"], rows[embedded]
    assert not rows["inswapper_128"]["present"]
    assert any("inswapper_128.onnx" in source for source in rows["inswapper_128"]["sources"])


def test_face_detector_size_is_checked_against_the_model(sample_media, tmp_path: Path) -> None:
    """FaceFusion's choices: scrfd/retinaface take 160x160 to 640x640, yunet only 640x640."""
    output = tmp_path / "out.png"
    result = run_cli(
        *swap_args(sample_media.source_tom_hanks, sample_media.group_photo, output),
        "--face-detector-size",
        "320x320",
    )
    assert_one_line_error(result, "face detector size 320x320 is not one of yunet's: 640x640")
    assert not output.exists()
    malformed = run_cli(
        *swap_args(sample_media.source_tom_hanks, sample_media.group_photo, output),
        "--face-detector-size",
        "640",
    )
    assert_one_line_error(malformed, "WIDTHxHEIGHT")


def test_the_process_entry_exits_with_mains_code_and_leaves_its_objects_frozen(
    monkeypatch,
) -> None:
    """`run_process` skips the interpreter's last garbage collections (0.2-0.4 s a job)."""
    import gc

    from facefusion_ray.cli import main as cli_main

    monkeypatch.setattr(cli_main, "main", lambda: 3)
    try:
        assert cli_main.run_process() == 3
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # this test process goes on
