"""Shared fixtures: real sample media, a real local Ray, real models."""

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from facefusion_ray.media import ffmpeg_tool

# Tests run a private local Ray; token auth only matters for shared clusters.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
# One analysis cache for the whole run, away from the user's: set before Ray starts, so the
# actors inherit it too.
os.environ.setdefault(
    "FACEFUSION_RAY_ANALYSIS_CACHE", tempfile.mkdtemp(prefix="facefusion-ray-test-analysis-")
)
# Segments of interrupted renders, likewise kept away from the user's.
os.environ.setdefault(
    "FACEFUSION_RAY_WORK_STORE", tempfile.mkdtemp(prefix="facefusion-ray-test-segments-")
)


@pytest.fixture(scope="session")
def sample_media():
    from facefusion_ray.sample_media import build_sample_media

    return build_sample_media()


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    import ray

    if not ray.is_initialized():
        # "local": never join another Ray running on this machine.
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def detector():
    from facefusion_ray.inference.execution import ExecutionConfig
    from facefusion_ray.pipeline.job_models import JobModels
    from facefusion_ray.pipeline.model_loading import load_detector
    from facefusion_ray.settings import SwapSettings

    settings, models = SwapSettings(), JobModels(ExecutionConfig())
    return load_detector(models.plan_for(settings), settings, models.sessions_for(settings))


@pytest.fixture(scope="session")
def recognizer():
    from facefusion_ray.analysis.sface import SFaceRecognizer
    from facefusion_ray.inference.sessions import ModelSession
    from facefusion_ray.zoo.model_store import resolve_model_path

    return SFaceRecognizer(ModelSession(resolve_model_path("sface"), name="sface"))


@pytest.fixture(scope="session")
def short_group_clip(sample_media, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 40 frames of the sample video at 640x360, with its audio."""
    import subprocess

    from facefusion_ray.media.ffmpeg_tool import ffmpeg_executable

    clip = tmp_path_factory.mktemp("clips") / "group_short.mp4"
    subprocess.run(
        [
            ffmpeg_executable(),
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(sample_media.target_video),
            "-frames:v",
            "40",
            "-t",
            "1.3333",
            "-vf",
            "scale=640:360",
            "-c:v",
            "libx264",
            "-crf",
            "12",
            "-preset",
            "veryfast",
            "-c:a",
            "aac",
            str(clip),
        ],
        check=True,
    )
    return clip


@pytest.fixture
def started_ffmpegs(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """Every ffmpeg process the media layer starts in the test, as it starts them."""
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def recording_popen(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        process = real_popen(*args, **kwargs)  # type: ignore[call-overload]
        started.append(process)
        return process

    monkeypatch.setattr(ffmpeg_tool.subprocess, "Popen", recording_popen)
    return started
