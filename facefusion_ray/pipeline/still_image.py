"""An image target: one frame, swapped in the driver's process (Ray would only add latency)."""

import tempfile
from pathlib import Path

from facefusion_ray.media import read_image
from facefusion_ray.media.images import write_image_atomic
from facefusion_ray.pipeline.frame_pipeline import FramePipeline
from facefusion_ray.pipeline.job_models import JobModels
from facefusion_ray.pipeline.render_preparation import PreparedRender
from facefusion_ray.pipeline.stage_clock import StageClock
from facefusion_ray.pipeline.swap_report import ChunkResult
from facefusion_ray.storage.locations import is_remote, publish_output


def render_still_image(prepared: PreparedRender, storage_options: dict[str, str]) -> None:
    request, report = prepared.request, prepared.report
    settings = request.settings
    pipeline = FramePipeline(
        settings,
        prepared.plan,
        prepared.identity,
        StageClock(),
        JobModels(settings.execution).sessions_for(settings),
        prepared.reference,
        prepared.identity_map,
    )
    frame = read_image(prepared.target, max_pixels=None)  # checked by prepare_render
    outcome = pipeline.process(frame)
    if is_remote(request.output):
        with tempfile.TemporaryDirectory(prefix="facefusion-ray-output-") as scratch:
            local = Path(scratch) / Path(request.output).name
            write_image_atomic(local, frame)
            publish_output(local, request.output, storage_options)
    else:
        write_image_atomic(Path(request.output), frame)
    detected, swapped = outcome.faces_detected, outcome.faces_swapped
    report.add_chunk(
        ChunkResult(0, 1, int(detected > 0), swapped, 0, frames_swapped=int(swapped > 0))
    )
    report.chunks = 1
    report.workers = 1
    report.add_model_stats(pipeline.model_calls())
