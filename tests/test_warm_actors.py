"""Warm render actors in a Ray that keeps them: a later job takes them over with their sessions,
other models get other actors, idle ones exit by themselves. Real local Ray, real renders."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import ray

from facefusion_ray.analysis.select import FaceSelection
from facefusion_ray.engine.actor_pool import workers_that_fit
from facefusion_ray.engine.driver import job_options_for
from facefusion_ray.engine.job import run_job
from facefusion_ray.engine.job_report import RENDERED, JobReport
from facefusion_ray.engine.render_actor import RenderActor
from facefusion_ray.engine.startup_report import StartupReport
from facefusion_ray.engine.warm_actors import (
    WARM_NAMESPACE,
    pool_key,
    publish_idle_seconds,
    stop_keeping_actors,
    warm_actor_names,
)
from facefusion_ray.inference.execution import ExecutionConfig
from facefusion_ray.pipeline.model_plan import ModelPlan, PlannedModel, Role
from facefusion_ray.pipeline.render_request import RenderRequest
from facefusion_ray.settings import SwapSettings
from facefusion_ray.zoo.manifest import load_manifest

SETTINGS = SwapSettings(chunk_frames=20, workers=2, use_analysis_cache=False)


@pytest.fixture
def keeping_ray(local_ray: None) -> Iterator[None]:
    """The session's Ray keeps idle actors for this test, as a kept Ray does, then stops."""
    publish_idle_seconds(600)
    yield
    stop_keeping_actors()


def render(clip: Path, source: Path, output: Path, settings: SwapSettings) -> JobReport:
    request = RenderRequest(str(clip), (str(source),), str(output), settings)
    options = job_options_for(settings, show_progress=False, work_store=str(output.parent / "w"))
    report = run_job([request], options)
    assert [outcome.status for outcome in report.renders] == [RENDERED], report.summary()
    return report


@pytest.mark.usefixtures("keeping_ray")
def test_a_second_job_takes_over_the_warm_actors_and_other_models_get_their_own(
    sample_media, short_group_clip, tmp_path
) -> None:
    source = sample_media.source_tom_hanks
    first = render(short_group_clip, source, tmp_path / "first.mp4", SETTINGS).startup
    assert first.actors_kept and (first.actors_created, first.actors_reused) == (2, 0)
    assert first.sessions_opened >= 2  # YuNet in each of the two actors
    pool = warm_actor_names()
    assert len(pool) == 2

    second_report = render(short_group_clip, source, tmp_path / "second.mp4", SETTINGS)
    second = second_report.startup
    assert (second.actors_created, second.actors_reused) == (0, 2)
    assert second.sessions_opened == 0 and second.sessions_seconds == 0
    assert warm_actor_names() == pool
    assert "2 workers reused" in second_report.summary()
    assert second_report.renders[0].report.startup["actors_reused"] == 2

    # Other models (SFace for the reference person): new actors, the idle ones make room.
    reference = replace(SETTINGS, face_selector=FaceSelection(mode="reference"))
    third = render(short_group_clip, source, tmp_path / "third.mp4", reference).startup
    assert (third.actors_created, third.actors_reused, third.actors_retired) == (2, 0, 2)
    assert third.sessions_opened >= 4
    assert set(warm_actor_names()).isdisjoint(pool)


@pytest.mark.usefixtures("local_ray")
def test_an_idle_warm_actor_exits_by_itself() -> None:
    actor = (
        ray.remote(RenderActor)
        .options(name="render-idle-test-0", namespace=WARM_NAMESPACE, lifetime="detached")
        .remote(ExecutionConfig(), 1, 1.0)
    )
    assert ray.get(actor.ready.remote())["jobs_before"] == 0
    deadline = time.monotonic() + 60
    while "render-idle-test-0" in warm_actor_names():
        assert time.monotonic() < deadline, "the idle actor is still there"
        time.sleep(0.5)


def planned(model_id: str, sha256: str) -> ModelPlan:
    spec = load_manifest().model(model_id)
    return ModelPlan((PlannedModel(Role.DETECTOR, spec, sha256),))


def test_the_pool_key_changes_with_models_code_settings_and_threads() -> None:
    cpu = ExecutionConfig()
    base = pool_key(cpu, 1, [planned("yunet", "a" * 64)])
    assert base == pool_key(cpu, 1, [planned("yunet", "a" * 64)])
    assert base != pool_key(cpu, 1, [planned("yunet", "b" * 64)])
    assert base != pool_key(cpu, 2, [planned("yunet", "a" * 64)])
    assert base != pool_key(replace(cpu, intra_op_threads=2), 1, [planned("yunet", "a" * 64)])


def test_a_model_re_pinned_under_its_id_reopens_the_actor_s_models() -> None:
    actor = RenderActor(ExecutionConfig(), 1)
    actor._forget_stale_models(planned("yunet", "a" * 64))
    models = actor._models
    actor._forget_stale_models(planned("yunet", "a" * 64))
    assert actor._models is models
    actor._forget_stale_models(planned("yunet", "b" * 64))
    assert actor._models is not models


def test_the_startup_report_counts_reused_actors_and_sessions_opened_in_the_job() -> None:
    startup = StartupReport(ray="kept", ray_seconds=0.2, actors_seconds=0.1)
    ready = [
        {"pid": 10, "jobs_before": 3, "sessions_opened": 2, "session_seconds": 0.5},
        {"pid": 11, "jobs_before": 0, "sessions_opened": 0, "session_seconds": 0.0},
    ]
    startup.count_actors(ready, {10: (2, 0.5), 11: (2, 0.4)})
    assert (startup.actors_reused, startup.actors_created, startup.sessions_opened) == (1, 1, 2)
    assert startup.sessions_seconds == 0.4 and startup.seconds == 0.7
    # An actor that reopened its models (one was re-pinned) counts from zero.
    startup.count_actors(ready[:1], {10: (1, 0.3)})
    assert startup.sessions_opened == 1 and startup.sessions_seconds == 0.3


@pytest.mark.usefixtures("local_ray")
def test_a_kept_ray_s_pool_is_cut_to_the_workers_it_can_hold() -> None:
    # The session's Ray has 2 CPUs.
    assert workers_that_fit(3, {"CPU": 1.0}) == 2
    assert workers_that_fit(1, {"CPU": 1.0}) == 1
    assert workers_that_fit(2, {"CPU": 4.0}) == 1
