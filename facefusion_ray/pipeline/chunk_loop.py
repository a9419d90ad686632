"""A chunk of a video through the pipeline: decode its range, analyse (or read the analysis
cache), swap, encode the segment. Shared by the Ray actors and the sequential baseline."""

import resource
import time
from collections.abc import Iterator
from pathlib import Path

from facefusion_ray.cache import AnalysisCache
from facefusion_ray.media import DecodedFrame, MediaInfo, SegmentEncoder, iter_decoded_frames
from facefusion_ray.pipeline.cached_analysis import CachePlan, ChunkAnalysis
from facefusion_ray.pipeline.chunks import Chunk
from facefusion_ray.pipeline.frame_pipeline import FramePipeline
from facefusion_ray.pipeline.review_probe import ReviewProbe
from facefusion_ray.pipeline.stage_clock import StageClock
from facefusion_ray.pipeline.swap_report import ChunkResult
from facefusion_ray.settings import SwapSettings


def timed_frames(frames: Iterator[DecodedFrame], clock: StageClock) -> Iterator[DecodedFrame]:
    """Charges the time spent waiting for each decoded frame to the `decode` stage."""
    while True:
        with clock.measure("decode"):
            frame = next(frames, None)
        if frame is None:
            return
        yield frame


def render_range(
    pipeline: FramePipeline,
    clock: StageClock,
    settings: SwapSettings,
    target: str,
    info: MediaInfo,
    chunk: Chunk,
    segment_path: Path,
    cache: AnalysisCache | None = None,
    cache_plan: CachePlan | None = None,
    review: ReviewProbe | None = None,
) -> ChunkResult:
    """Decode `chunk` of `target`, swap every frame, encode it to `segment_path`."""
    if info.fps is None:
        raise ValueError("render_range needs a video with a frame rate")
    started = time.perf_counter()
    frames = frames_with_faces = frames_swapped = faces_swapped = 0
    stages_before = clock.snapshot()
    encoder = SegmentEncoder(
        segment_path,
        info.width,
        info.height,
        info.fps,
        quality=settings.output_video_quality,
        preset=settings.output_video_preset,
    )
    analysis = ChunkAnalysis(cache, cache_plan, chunk, clock)
    with encoder:
        decoded = iter_decoded_frames(target, chunk.start, chunk.count, info)
        for offset, decoded_frame in enumerate(timed_frames(decoded, clock)):
            frame = decoded_frame.pixels
            faces = analysis.faces(offset, decoded_frame, pipeline.analyse)
            if review is not None:
                with clock.measure("review"):
                    review.before_swap(chunk.start + offset, frame, faces)
            outcome = pipeline.apply(frame, faces)
            if review is not None:
                with clock.measure("review"):
                    review.after_swap(
                        chunk.start + offset, frame, outcome.faces_detected, outcome.swapped
                    )
            with clock.measure("encode"):
                encoder.write(frame)
            frames += 1
            frames_with_faces += int(outcome.faces_detected > 0)
            faces_swapped += outcome.faces_swapped
            frames_swapped += int(outcome.faces_swapped > 0)
        with clock.measure("encode"):
            encoder.close()
    analysis.finish()
    stages = {
        stage: round(seconds - stages_before.get(stage, 0.0), 6)
        for stage, seconds in clock.snapshot().items()
    }
    return ChunkResult(
        chunk.index,
        frames,
        frames_with_faces,
        faces_swapped,
        time.perf_counter() - started,
        stages,
        cache_hits=analysis.hits,
        cache_misses=analysis.misses,
        frames_swapped=frames_swapped,
        review=review.result if review is not None else None,
    )


def peak_memory_bytes() -> int:
    """Peak resident memory of this process.

    ffmpeg children are not counted: getrusage reports a child's peak including the parent
    pages it held between fork and exec, which says nothing about ffmpeg itself.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
