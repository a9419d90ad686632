"""Rendering a frame range into an encoded segment, and the Ray actor that does it."""

import resource
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from facefusion_ray.cache import AnalysisCache
from facefusion_ray.engine.cached_analysis import CachePlan, ChunkAnalysis
from facefusion_ray.engine.frame_pipeline import FramePipeline
from facefusion_ray.engine.plan import Chunk
from facefusion_ray.engine.report import ChunkResult
from facefusion_ray.engine.sources import IdentityMap, SourceIdentity
from facefusion_ray.engine.stage_clock import StageClock
from facefusion_ray.media import MediaInfo, SegmentEncoder, iter_frames
from facefusion_ray.models.session_factory import ModelUsage
from facefusion_ray.settings import SwapSettings


def timed_frames(frames: Iterator[np.ndarray], clock: StageClock) -> Iterator[np.ndarray]:
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
) -> ChunkResult:
    """Decode `chunk` of `target`, swap every frame, encode it to `segment_path`."""
    if info.fps is None:
        raise ValueError("render_range needs a video with a frame rate")
    started = time.perf_counter()
    frames = frames_with_faces = faces_swapped = 0
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
        frames_in_chunk = timed_frames(iter_frames(target, chunk.start, chunk.count, info), clock)
        for offset, frame in enumerate(frames_in_chunk):
            outcome = pipeline.apply(frame, analysis.faces(offset, frame, pipeline.analyse))
            with clock.measure("encode"):
                encoder.write(frame)
            frames += 1
            frames_with_faces += int(outcome.faces_detected > 0)
            faces_swapped += outcome.faces_swapped
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
    )


def peak_memory_bytes() -> int:
    """Peak resident memory of this process.

    ffmpeg children are not counted: getrusage reports a child's peak including the parent
    pages it held between fork and exec, which says nothing about ffmpeg itself.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class ChunkRenderer:
    """Holds the sessions for the actor's life; the driver wraps it with `ray.remote`."""

    def __init__(
        self,
        settings: SwapSettings,
        source: SourceIdentity,
        reference_embedding: np.ndarray | None = None,
        cache_plan: CachePlan | None = None,
        identity_map: IdentityMap | None = None,
    ) -> None:
        # One actor per CPU: OpenCV's own thread pool would only fight the other actors.
        cv2.setNumThreads(settings.threads_per_worker)
        self._settings = settings
        self._clock = StageClock()
        self._pipeline = FramePipeline(
            settings, source, self._clock, reference_embedding, identity_map
        )
        self._cache_plan = cache_plan
        self._cache = cache_plan.open() if cache_plan is not None else None

    def render_chunk(
        self, target: str, info: MediaInfo, chunk: Chunk, segment_path: str
    ) -> ChunkResult:
        return render_range(
            self._pipeline,
            self._clock,
            self._settings,
            target,
            info,
            chunk,
            Path(segment_path),
            self._cache,
            self._cache_plan,
        )

    def model_calls(self) -> dict[str, ModelUsage]:
        return self._pipeline.model_calls()

    def peak_memory(self) -> int:
        return peak_memory_bytes()
