"""The single-process path: one frame loop, no Ray. The baseline the engine must beat and match."""

from pathlib import Path

from facefusion_ray.errors import SettingsError
from facefusion_ray.media.encode import SEGMENT_SUFFIX
from facefusion_ray.pipeline.chunk_loop import render_range
from facefusion_ray.pipeline.chunks import Chunk
from facefusion_ray.pipeline.frame_pipeline import FramePipeline
from facefusion_ray.pipeline.job_models import JobModels
from facefusion_ray.pipeline.output_assembly import assemble_output, segment_folder
from facefusion_ray.pipeline.render_preparation import (
    PreparedRender,
    driver_models,
    finish_report,
    prepare_render,
    reopen_target,
    target_audio,
)
from facefusion_ray.pipeline.render_request import RenderRequest
from facefusion_ray.pipeline.stage_clock import StageClock
from facefusion_ray.pipeline.still_image import render_still_image
from facefusion_ray.pipeline.swap_report import SwapReport
from facefusion_ray.storage.locations import is_remote


def render_video_sequential(
    prepared: PreparedRender, output: Path, storage_options: dict[str, str] | None = None
) -> None:
    """Decode, analyse, swap and encode every frame in turn, like FaceFusion's own loop."""
    info, settings, report = prepared.info, prepared.request.settings, prepared.report
    if info.fps is None:
        raise ValueError("render_video_sequential needs a video with a frame rate")
    clock = StageClock()
    pipeline = FramePipeline(
        settings,
        prepared.plan,
        prepared.identity,
        clock,
        JobModels(settings.execution).sessions_for(settings),
        prepared.reference,
        prepared.identity_map,
    )
    cache_plan = prepared.cache_plan
    with segment_folder(output) as folder:
        segment = folder / f"whole{SEGMENT_SUFFIX}"
        whole_video = Chunk(0, 0, info.frame_count)
        report.add_chunk(
            render_range(
                pipeline,
                clock,
                settings,
                reopen_target(prepared, storage_options),
                info,
                whole_video,
                segment,
                cache_plan.open() if cache_plan is not None else None,
                cache_plan,
            )
        )
        report.chunks = 1
        report.workers = 1
        report.add_model_stats(pipeline.model_calls())
        audio = target_audio(prepared, storage_options)
        assemble_output([segment], audio, info, output, report)


def run_sequential(request: RenderRequest, storage_options: dict[str, str]) -> SwapReport:
    """The single-process, frame-by-frame baseline (no Ray, no resume)."""
    if is_remote(request.output):
        raise SettingsError("the sequential path writes local outputs only")
    prepared = prepare_render(request, driver_models(), storage_options)
    if prepared.info.kind == "image":
        render_still_image(prepared, storage_options)
    else:
        render_video_sequential(prepared, Path(request.output), storage_options)
    finish_report(prepared)
    return prepared.report
