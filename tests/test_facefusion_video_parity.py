"""Video parity with FaceFusion 3.8.1: the face pipeline on every frame of a clip, and this
project's video path equal to its still path.

The two programs' video colour paths differ on purpose (docs/facefusion-parity.md, "Video"):
FaceFusion converts every frame to BGR with swscale's truncating conversion and encodes its
output as BT.709, so even with `--output-video-quality 100` (lossless libx264) its output
differs from its input by a level or two everywhere, faces or not, and the faces it finds move
by a fraction of a pixel with those levels. This project keeps the decoded planes. Comparing the
two lossless files pixel for pixel would measure the colour paths, not the faces, so the proof
has two links, each exact to its own criterion:

1. **FaceFusion's own frames.** FaceFusion renders the clip, and a tap on its ffmpeg pipes
   (tests/ffmpeg_frame_tap.py) keeps the frames it decoded and the frames it handed to its
   encoder. This project renders each decoded frame; every frame meets the still criterion of
   tests/parity_checks.py against FaceFusion's processed frame, with the same six faces.
2. **This project's video path.** The engine renders the clip losslessly in chunks of at most
   3 frames on 2 workers; every output frame equals, bit for bit, this project's still render
   of the same decoded frame written back into the planes the way the video path writes its
   changes (media/plane_edit.py).
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from facefusion_ray.analysis.select import FaceSelection
from facefusion_ray.engine.driver import run_swap
from facefusion_ray.media import read_image
from facefusion_ray.media.decode import DecodedFrame
from facefusion_ray.media.ffmpeg_tool import ffmpeg_executable
from facefusion_ray.media.images import write_image_atomic
from facefusion_ray.media.plane_edit import PlaneEdit
from facefusion_ray.settings import SwapSettings
from tests.facefusion_oracle import reference_tarball
from tests.parity_checks import compare
from tests.parity_installation import Installation, group_known_faces, install, model_files

pytestmark = pytest.mark.skipif(
    reference_tarball() is None, reason="FaceFusion 3.8.1 source tarball not on this machine"
)

WIDTH, HEIGHT, FRAMES = 640, 360, 10
FACES = 6  # the sample's group, in every frame of the clip
BGR_FRAME_BYTES = WIDTH * HEIGHT * 3
PLANE_FRAME_BYTES = WIDTH * HEIGHT * 3 // 2


def make_clip(video: Path, clip: Path) -> Path:
    """The sample's first frames at 640x360, lossless 4:2:0, untagged as the sample is."""
    subprocess.run(
        [
            *(ffmpeg_executable(), "-nostdin", "-loglevel", "error", "-y", "-i", str(video)),
            *("-frames:v", str(FRAMES), "-an", "-vf", f"scale={WIDTH}:{HEIGHT}"),
            *("-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv420p", str(clip)),
        ],
        check=True,
    )
    return clip


def decoded_planes(video: Path) -> np.ndarray:
    """Every frame of `video` as its I420 bytes, one row a frame."""
    raw = subprocess.run(
        [
            *(ffmpeg_executable(), "-nostdin", "-loglevel", "error", "-i", str(video)),
            *("-f", "rawvideo", "-pix_fmt", "yuv420p", "-"),
        ],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, PLANE_FRAME_BYTES)


def tapped_frames(path: Path) -> np.ndarray:
    return np.fromfile(path, np.uint8).reshape(-1, HEIGHT, WIDTH, 3)


@pytest.fixture(scope="module")
def parity(tmp_path_factory: pytest.TempPathFactory, sample_media) -> tuple[Installation, Path]:
    folder = tmp_path_factory.mktemp("facefusion-video-parity")
    models = model_files(0.2, group_known_faces(sample_media.group_photo))
    installation = install("parity-heat-0.2", models, folder)
    return installation, make_clip(sample_media.target_video, folder / "clip.mp4")


def settings_for(installation: Installation) -> SwapSettings:
    return SwapSettings(
        face_detector_model="yunet_2023_mar",
        face_swapper_model="inswapper_128",
        model_store=installation.store,
        use_analysis_cache=False,
        face_selector=FaceSelection(mode="many"),
    )


def still_render(
    frame: np.ndarray, source: Path, folder: Path, name: str, settings: SwapSettings
) -> np.ndarray:
    write_image_atomic(folder / f"{name}-in.png", frame)
    run_swap(
        [source], folder / f"{name}-in.png", folder / f"{name}-out.png", settings, sequential=True
    )
    return read_image(folder / f"{name}-out.png")


def test_every_frame_facefusion_processed_is_rendered_the_same_here(
    parity, sample_media, tmp_path: Path
) -> None:
    installation, clip = parity
    tap = tmp_path / "tap"
    run = installation.oracle.run(
        "headless-run",
        [
            *("-s", str(sample_media.source_tom_hanks), "-t", str(clip)),
            *("-o", str(tmp_path / "facefusion.mp4"), "--processors", "face_swapper"),
            *("--face-swapper-model", "inswapper_128", "--face-detector-model", "yunet"),
            *("--face-selector-mode", "many", "--output-video-quality", "100"),
        ],
        tmp_path / "facefusion-work",
        tap_frames=tap,
    )
    assert run.returncode == 0, run.log[-3000:]
    whole = [path for path in sorted(tap.glob("decoded-*.bgr")) if path.stat().st_size]
    decoded = next(
        tapped_frames(path) for path in whole if path.stat().st_size == FRAMES * BGR_FRAME_BYTES
    )
    processed = tapped_frames(tap / "encoded-0.bgr")
    assert len(processed) == FRAMES
    settings = settings_for(installation)
    verdicts = [
        compare(
            decoded[index],
            still_render(
                decoded[index], sample_media.source_tom_hanks, tmp_path, f"{index}", settings
            ),
            processed[index],
        )
        for index in range(FRAMES)
    ]
    report = "\n".join(f"frame {index}: {verdict}" for index, verdict in enumerate(verdicts))
    print(report)
    assert all(verdict.holds and verdict.regions_ours == FACES for verdict in verdicts), report


@pytest.mark.usefixtures("local_ray")
def test_the_video_path_writes_what_the_still_path_renders_on_every_frame(
    parity, sample_media, tmp_path: Path
) -> None:
    installation, clip = parity
    settings = settings_for(installation)
    output = tmp_path / "ours.mp4"
    chunked = replace(settings, output_video_quality=100, chunk_frames=3, workers=2)
    run_swap([sample_media.source_tom_hanks], clip, output, chunked, show_progress=False)
    inputs, outputs = decoded_planes(clip), decoded_planes(output)
    assert len(outputs) == len(inputs) == FRAMES
    unequal = []
    for index in range(FRAMES):
        frame = DecodedFrame(inputs[index].tobytes(), "yuv420p", WIDTH, HEIGHT)
        rendered = still_render(
            frame.pixels, sample_media.source_tom_hanks, tmp_path, f"{index}", settings
        )
        edit = PlaneEdit(frame, None)
        changed = np.any(rendered != frame.pixels, axis=2)
        assert changed.any(), f"frame {index}: no face swapped"
        edit.canvas[changed] = rendered[changed]
        expected = edit.finish().reshape(-1)
        if not np.array_equal(expected, outputs[index]):
            unequal.append((index, int((expected != outputs[index]).sum())))
    assert not unequal, (
        f"frames whose planes differ from the still render (frame, bytes): {unequal}"
    )
