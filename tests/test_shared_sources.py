"""A job's renders share their source images: each is staged, checked, read, hashed, detected and
embedded once per job, however many renders use it (the driver's preparation, no Ray)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import facefusion_ray.pipeline.shared_sources as shared_sources
import facefusion_ray.pipeline.sources as sources
from facefusion_ray.engine.job_options import JobOptions
from facefusion_ray.engine.job_report import RENDERED, RenderOutcome
from facefusion_ray.engine.render_feed import RenderFeed
from facefusion_ray.pipeline.render_request import RenderRequest
from facefusion_ray.settings import SwapSettings

RENDERS = 6


def counting(calls: Counter[str], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return function(*args, **kwargs)

    return counted


def test_sources_shared_by_a_batch_are_prepared_once_per_job(
    sample_media, short_group_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: Counter[str] = Counter()
    for module, name in [
        (shared_sources, "stage_input"),
        (shared_sources, "check_image_file"),
        (shared_sources, "file_sha256"),
        (sources, "read_image"),
    ]:
        monkeypatch.setattr(module, name, counting(calls, name, getattr(module, name)))
    faces = (str(sample_media.source_tom_hanks), str(sample_media.source_astronaut))
    stricter = SwapSettings(face_detector_score=0.6)
    requests = [
        RenderRequest(
            str(short_group_clip),
            faces[: 1 + number % 2],  # two source sets: (tom), (tom, astronaut)
            str(tmp_path / f"out-{number}.mp4"),
            stricter if number == RENDERS - 1 else SwapSettings(),
        )
        for number in range(RENDERS)
    ]
    outcomes = [RenderOutcome(f"r{n}", r.target, r.output) for n, r in enumerate(requests)]
    feed = RenderFeed(requests, outcomes, str(tmp_path / "work"), JobOptions(show_progress=False))
    videos = []
    while not feed.finished:
        videos += feed.take(wait=True)

    assert len(videos) == RENDERS and all(o.status == RENDERED for o in outcomes)
    # Two files, each staged, checked, hashed once; images read once per analysis setup:
    # (tom), then (tom, astronaut), then (tom, astronaut) again under the stricter detector.
    assert calls == Counter(stage_input=2, check_image_file=2, file_sha256=2, read_image=1 + 2 + 2)
    detector_calls = [sum(o.report.source_model_calls.values()) for o in outcomes]
    assert detector_calls[0] > 0 and detector_calls[1] > 0 and detector_calls[-1] > 0
    assert detector_calls[2:-1] == [0] * (RENDERS - 3)
    keys = {video.prepared.render_key for video in videos}
    assert len(keys) == RENDERS  # each output its own render key still
