"""Rendering a frame range into an encoded segment, and the Ray actor that does it."""

import os
import resource
import tempfile
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import ray

from facefusion_ray.cache import AnalysisCache
from facefusion_ray.engine.segment_store import SegmentStore
from facefusion_ray.inference.execution import ExecutionConfig
from facefusion_ray.inference.session_factory import ModelUsage
from facefusion_ray.media import DecodedFrame, MediaInfo, SegmentEncoder, iter_decoded_frames
from facefusion_ray.media.encode import SEGMENT_SUFFIX
from facefusion_ray.media.images import read_image
from facefusion_ray.pipeline.cached_analysis import CachePlan, ChunkAnalysis
from facefusion_ray.pipeline.chunks import Chunk
from facefusion_ray.pipeline.frame_pipeline import FramePipeline, load_recognizer
from facefusion_ray.pipeline.model_loading import SessionsPerStore, load_detector
from facefusion_ray.pipeline.review_probe import ReviewFrames, ReviewProbe, source_embedding
from facefusion_ray.pipeline.sources import IdentityMap, SourceIdentity
from facefusion_ray.pipeline.stage_clock import StageClock
from facefusion_ray.pipeline.swap_report import ChunkResult
from facefusion_ray.settings import SwapSettings
from facefusion_ray.storage.locations import stage_input


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


@dataclass(frozen=True)
class RenderContext:
    """Everything an actor needs to render any chunk of one render; put in the object store
    once per render and passed by reference with each chunk."""

    render_key: str
    label: str
    target: str  # local path or object-store URL
    info: MediaInfo
    settings: SwapSettings
    source: SourceIdentity
    work_store: str
    reference_embedding: np.ndarray | None = None
    identity_map: IdentityMap | None = None
    cache_plan: CachePlan | None = None
    storage_options: tuple[tuple[str, str], ...] = ()
    # What an A/B review measures of this render's frames (None: not reviewed).
    review: ReviewFrames | None = None


# Pipelines kept per actor: a batch interleaves renders, and building one is cheap next to a
# chunk, but the sessions behind them are shared anyway.
_PIPELINES_KEPT = 16


class RenderActor:
    """A worker of the job's pool; the driver wraps it with `ray.remote` and its resources.

    Sessions are opened once per actor (per model store) and shared by the pipelines of every
    render the actor serves; nothing but the encoded segment leaves the actor's node.
    """

    def __init__(self, execution: ExecutionConfig, threads: int) -> None:
        # One actor per CPU: OpenCV's own thread pool would only fight the other actors.
        cv2.setNumThreads(threads)
        self._clock = StageClock()
        self._sessions = SessionsPerStore(execution)
        self._pipelines: OrderedDict[str, FramePipeline] = OrderedDict()
        self._caches: dict[str | None, AnalysisCache] = {}
        self._review_embeddings: dict[str, ReviewFrames] = {}

    def ready(self) -> dict[str, object]:
        """Answered once the actor is placed and built: where it runs."""
        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()}

    def render(self, context: RenderContext, chunk: Chunk) -> ChunkResult:
        pipeline = self._pipeline_for(context)
        sessions = self._sessions.sessions_for(context.settings)
        # Before the snapshot: finding the source face for the review is not the render's work.
        review = self._review_probe(context)
        usage_before = sessions.stats()
        options = dict(context.storage_options)
        target = stage_input(context.target, options)
        cache = None
        if context.cache_plan is not None:
            cache = self._caches.get(context.cache_plan.url)
            if cache is None:
                cache = self._caches[context.cache_plan.url] = context.cache_plan.open()
        segments = SegmentStore(context.work_store, context.render_key, options)
        with tempfile.TemporaryDirectory(prefix="facefusion-ray-chunk-") as scratch:
            local_segment = Path(scratch) / f"segment{SEGMENT_SUFFIX}"
            result = render_range(
                pipeline,
                self._clock,
                context.settings,
                str(target),
                context.info,
                chunk,
                local_segment,
                cache,
                context.cache_plan,
                review,
            )
            with self._clock.measure("segment_io"):
                segments.put_segment(chunk, local_segment, result)
        result.model_usage = usage_delta(usage_before, sessions.stats())
        result.worker_pid = os.getpid()
        return result

    def peak_memory(self) -> int:
        return peak_memory_bytes()

    def _review_probe(self, context: RenderContext) -> ReviewProbe | None:
        """The A/B review of this chunk, with the source's SFace embedding found once per
        render (identity is left out when no source image shows a face to SFace)."""
        if context.review is None:
            return None
        sessions = self._sessions.sessions_for(context.settings)
        recognizer = load_recognizer(sessions)
        frames = self._review_embeddings.get(context.render_key)
        if frames is None:
            options = dict(context.storage_options)
            images = [read_image(stage_input(path, options)) for path in context.source.image_paths]
            detector = load_detector(context.settings, sessions)
            embedding = source_embedding(images, detector, recognizer)
            frames = replace(context.review, source_embedding=embedding)
            self._review_embeddings[context.render_key] = frames
        return ReviewProbe(frames, recognizer)

    def _pipeline_for(self, context: RenderContext) -> FramePipeline:
        pipeline = self._pipelines.get(context.render_key)
        if pipeline is None:
            pipeline = FramePipeline(
                context.settings,
                context.source,
                self._clock,
                context.reference_embedding,
                context.identity_map,
                sessions=self._sessions.sessions_for(context.settings),
            )
            self._pipelines[context.render_key] = pipeline
            while len(self._pipelines) > _PIPELINES_KEPT:
                self._pipelines.popitem(last=False)
        self._pipelines.move_to_end(context.render_key)
        return pipeline


def usage_delta(
    before: dict[str, ModelUsage], after: dict[str, ModelUsage]
) -> dict[str, ModelUsage]:
    """The calls and seconds between two snapshots of a session factory's stats."""
    delta: dict[str, ModelUsage] = {}
    for model, usage in after.items():
        previous = before.get(model)
        calls = usage["calls"] - (previous["calls"] if previous else 0)
        if calls <= 0:
            continue
        seconds = usage["seconds"] - (previous["seconds"] if previous else 0.0)
        delta[model] = ModelUsage(
            calls=calls,
            seconds=round(seconds, 6),
            provider=usage["provider"],
            precision=usage["precision"],
            fallback=usage["fallback"],
        )
    return delta
