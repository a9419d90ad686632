"""The single-process path: one frame loop, no Ray. The baseline the engine must beat and match."""

from pathlib import Path

import numpy as np

from facefusion_ray.engine.render_actor import render_range
from facefusion_ray.media import MediaInfo
from facefusion_ray.media.encode import SEGMENT_SUFFIX
from facefusion_ray.pipeline.cached_analysis import CachePlan
from facefusion_ray.pipeline.chunks import Chunk
from facefusion_ray.pipeline.frame_pipeline import FramePipeline
from facefusion_ray.pipeline.output_assembly import assemble_output, segment_folder
from facefusion_ray.pipeline.sources import IdentityMap, SourceIdentity
from facefusion_ray.pipeline.stage_clock import StageClock
from facefusion_ray.pipeline.swap_report import SwapReport
from facefusion_ray.settings import SwapSettings


def render_video_sequential(
    target: Path,
    info: MediaInfo,
    output: Path,
    settings: SwapSettings,
    source: SourceIdentity,
    report: SwapReport,
    reference_embedding: np.ndarray | None = None,
    cache_plan: CachePlan | None = None,
    identity_map: IdentityMap | None = None,
) -> None:
    """Decode, analyse, swap and encode every frame in turn, like FaceFusion's own loop."""
    if info.fps is None:
        raise ValueError("render_video_sequential needs a video with a frame rate")
    clock = StageClock()
    pipeline = FramePipeline(settings, source, clock, reference_embedding, identity_map)
    with segment_folder(output) as folder:
        segment = folder / f"whole{SEGMENT_SUFFIX}"
        whole_video = Chunk(0, 0, info.frame_count)
        report.add_chunk(
            render_range(
                pipeline,
                clock,
                settings,
                str(target),
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
        assemble_output([segment], target, info, output, report)
