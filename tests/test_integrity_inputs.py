"""Hostile and invalid inputs (issue 18, cases 6 and 8): decompression bombs are refused from
their header before decoding, with one clear line; options are refused before any work; a folder
as target and an undecodable image say what they are."""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from facefusion_ray.cli.batch_spec import load_batch_spec
from facefusion_ray.cli.main import main
from facefusion_ray.errors import MediaError, SettingsError
from facefusion_ray.media import probe_media
from facefusion_ray.media.images import read_image
from facefusion_ray.media.pixel_limit import DEFAULT_MAX_PIXELS, image_header_size
from facefusion_ray.settings import SwapSettings
from tests.media_factory import make_clip
from tests.test_batch_spec import make_files, minimal_spec, write_spec


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header (with a valid CRC) claims width x height pixels."""
    ok, encoded = cv2.imencode(".png", np.zeros((2, 2, 3), np.uint8))
    assert ok
    data = bytearray(encoded.tobytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize("size", [(30000, 30000), (10**6, 10**6)])
@pytest.mark.parametrize("role", ["source", "target"])
def test_a_decompression_bomb_is_refused_from_its_header(
    sample_media, tmp_path: Path, capsys: pytest.CaptureFixture[str], size, role: str
) -> None:
    bomb = png_claiming(tmp_path / "bomb.png", *size)
    source, target = (bomb, sample_media.group_photo)
    if role == "target":
        source, target = sample_media.source_tom_hanks, bomb
    started = time.perf_counter()
    code, error = run_cli(
        capsys,
        "swap",
        "--source",
        str(source),
        "--target",
        str(target),
        "--output",
        str(tmp_path / "out.png"),
        "--sequential",
    )
    assert time.perf_counter() - started < 10
    assert code == 1 and error.count("\n") == 1 and error.count("error:") == 1
    assert f"{size[0]}x{size[1]} pixels" in error and "--max-pixels" in error
    assert not (tmp_path / "out.png").exists()


def test_the_limit_can_be_raised_and_lowered(tmp_path: Path) -> None:
    image = tmp_path / "small.png"
    cv2.imwrite(str(image), np.zeros((100, 120, 3), np.uint8))
    assert read_image(image).shape == (100, 120, 3)
    with pytest.raises(MediaError, match="120x100 pixels"):
        read_image(image, max_pixels=11_999)
    assert read_image(image, max_pixels=12_000).shape == (100, 120, 3)
    clip = make_clip(tmp_path / "clip.mp4", frames=2, audio=False)
    with pytest.raises(MediaError, match="160x90 pixels"):
        probe_media(clip, max_pixels=160 * 90 - 1)
    assert probe_media(clip, max_pixels=160 * 90).width == 160
    assert SwapSettings().max_pixels == DEFAULT_MAX_PIXELS == 8192 * 8192


def test_opencv_refusals_are_one_line(tmp_path: Path) -> None:
    bomb = png_claiming(tmp_path / "bomb.png", 10**6, 10**6)
    with pytest.raises(MediaError) as refusal:
        read_image(bomb, max_pixels=None)  # OpenCV's own limit, reported in one line
    assert "\n" not in str(refusal.value) and "error:" not in str(refusal.value)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".webp"])
def test_header_sizes_of_each_format(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"image{suffix}"
    assert cv2.imwrite(str(path), np.full((37, 53, 3), 128, np.uint8))
    assert image_header_size(path) == (53, 37)


def test_gif_header_size(tmp_path: Path) -> None:
    path = tmp_path / "image.gif"
    path.write_bytes(b"GIF89a" + struct.pack("<HH", 40000, 30000) + b"\x00" * 8)
    assert image_header_size(path) == (40000, 30000)


def test_an_invalid_preset_is_refused_before_any_work(
    sample_media, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SettingsError, match="unknown output video preset: turbo"):
        SwapSettings(output_video_preset="turbo")
    started = time.perf_counter()
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "swap",
                "--source",
                str(sample_media.source_tom_hanks),
                "--target",
                str(sample_media.target_video),
                "--output",
                str(tmp_path / "out.mp4"),
                "--output-video-preset",
                "turbo",
            ]
        )
    assert exit_.value.code == 2 and time.perf_counter() - started < 2
    assert "invalid choice: 'turbo'" in capsys.readouterr().err
    make_files(tmp_path, "videos/a.mp4", "faces/anna.jpg")
    spec = minimal_spec(options={"output_video_preset": "turbo"})
    with pytest.raises(SettingsError, match="turbo"):
        load_batch_spec(write_spec(tmp_path, spec))


def test_a_folder_as_target_says_so(
    sample_media, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "clips.mp4"
    folder.mkdir()
    code, error = run_cli(
        capsys,
        "swap",
        "--source",
        str(sample_media.source_tom_hanks),
        "--target",
        str(folder),
        "--output",
        str(tmp_path / "out.mp4"),
        "--sequential",
    )
    assert code == 1 and "is a folder, not a video or image file" in error
    assert "no such file" not in error
