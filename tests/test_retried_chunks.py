"""A chunk retried after its worker was lost is not rendered again when that worker committed
it before it went: the retry answers from the committed segment (a node lost mid-run must not
make a chunk render twice)."""

from pathlib import Path

from facefusion_ray.engine.job import render_context
from facefusion_ray.engine.job_options import JobOptions
from facefusion_ray.engine.job_report import RenderOutcome
from facefusion_ray.engine.render_actor import RenderActor
from facefusion_ray.engine.render_plan import plan_video
from facefusion_ray.pipeline.render_preparation import driver_models, prepare_render
from facefusion_ray.pipeline.render_request import RenderRequest
from facefusion_ray.settings import SwapSettings


def test_a_retried_chunk_that_was_committed_is_not_rendered_again(
    sample_media, short_group_clip: Path, tmp_path: Path
) -> None:
    settings = SwapSettings(chunk_frames=4, analysis_cache=str(tmp_path / "cache"))
    output = str(tmp_path / "out.mp4")
    request = RenderRequest(
        str(short_group_clip), (str(sample_media.source_tom_hanks),), output, settings
    )
    options = JobOptions(workers=1, work_store=str(tmp_path / "work"))
    prepared = prepare_render(request, driver_models())
    outcome = RenderOutcome("clip", request.target, output)
    video = plan_video(0, prepared, outcome, str(tmp_path / "work"), options)
    assert video is not None
    context = render_context(video, options)
    # The actor's class, called in this process: what a Ray actor would run.
    actor = RenderActor(options.execution, 1)
    first = actor.render(context, video.chunks[0])
    (record,) = (tmp_path / "work").glob("*/frames-*.json")
    committed_at = record.stat().st_mtime_ns
    again = actor.render(context, video.chunks[0], retry=True)
    assert record.stat().st_mtime_ns == committed_at
    assert again.stage_seconds == {} and again.model_usage == {}
    assert (again.frames, again.faces_swapped) == (first.frames, first.faces_swapped)
    # A retried chunk that nobody committed is rendered.
    second = actor.render(context, video.chunks[1], retry=True)
    assert second.stage_seconds and len(list(record.parent.glob("frames-*.json"))) == 2
