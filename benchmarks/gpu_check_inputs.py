"""What `benchmarks/gpu_check.py` renders from, made inside its environment: the sample media,
stand-ins at FaceFusion's published costs imported into a model store, and the FP16 check."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.gpu_check import STORE
from benchmarks.published_costs import build_in_subprocess
from benchmarks.workspace import SAMPLE_FPS, run_ffmpeg_quietly
from facefusion_ray.media.images import read_image, write_image_atomic
from facefusion_ray.sample_media import build_sample_media
from tests.standin_models import FP16_MAX_PIXEL_DIFFERENCE


def prepare_inputs(work: Path, frames: int) -> None:
    """source.png, target.mp4 (the first `frames` frames of the 720p sample), group.png and the
    model store; what is there already from an earlier check is kept."""
    media = build_sample_media()
    work.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(media.source_tom_hanks, work / "source.png")
    if not (work / "group.png").exists():
        write_image_atomic(work / "group.png", read_image(media.group_photo))
    target = work / "target.mp4"
    if not target.exists():
        run_ffmpeg_quietly(
            "-i", str(media.target_video), "-frames:v", str(frames),
            "-t", f"{frames / SAMPLE_FPS:.4f}", "-c:v", "libx264", "-crf", "18",
            "-preset", "veryfast", "-c:a", "aac", str(target),
        )  # fmt: skip
    store = work / STORE
    if (store / ".complete").exists():
        return
    models = build_in_subprocess(work / "facefusion", fp16=True)
    cli = [sys.executable, "-m", "facefusion_ray", "models"]
    subprocess.run([*cli, "pull", "yunet", "--store", str(store)], check=True)
    imported = [*cli, "import", "--from-facefusion", str(models.folder), "--store", str(store)]
    subprocess.run(imported, check=True)
    (store / ".complete").touch()


def fp16_matches_fp32(fp16: Path, fp32: Path) -> str:
    """One line: whether the FP16 swap of the still matches the FP32 one within the tolerance
    the tests hold the FP16 swapper to."""
    if not fp16.exists() or not fp32.exists():
        return "FAILED: FP16 against FP32: a still was not rendered"
    difference = np.abs(read_image(fp16).astype(int) - read_image(fp32).astype(int))
    worst = int(difference.max())
    verdict = "ok" if worst <= FP16_MAX_PIXEL_DIFFERENCE else "FAILED"
    return (
        f"{verdict}: FP16 against FP32 on the still: largest pixel difference {worst} "
        f"(tolerance {FP16_MAX_PIXEL_DIFFERENCE}), {int((difference > 0).sum())} values differ"
    )
