"""The Ray actor that renders chunks into segments of the work store, and what it is given."""

import logging
import os
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import ray

from facefusion_ray.cache import AnalysisCache
from facefusion_ray.engine.segment_store import SegmentStore
from facefusion_ray.engine.warm_actors import reserved
from facefusion_ray.inference.execution import ExecutionConfig, actor_resources
from facefusion_ray.inference.session_factory import ModelUsage
from facefusion_ray.log_redaction import install_redaction
from facefusion_ray.media import MediaInfo
from facefusion_ray.media.encode import SEGMENT_SUFFIX
from facefusion_ray.media.images import read_image
from facefusion_ray.media.remote_media import MediaSource
from facefusion_ray.pipeline.cached_analysis import CachePlan
from facefusion_ray.pipeline.chunk_loop import peak_memory_bytes, render_range
from facefusion_ray.pipeline.chunks import Chunk
from facefusion_ray.pipeline.frame_pipeline import FramePipeline
from facefusion_ray.pipeline.job_models import JobModels
from facefusion_ray.pipeline.model_loading import load_analyser, load_recognizer
from facefusion_ray.pipeline.model_plan import EMBEDDED_RECOGNIZER, ModelPlan
from facefusion_ray.pipeline.review_probe import ReviewFrames, ReviewProbe, source_embedding
from facefusion_ray.pipeline.sources import IdentityMap, SourceIdentity
from facefusion_ray.pipeline.stage_clock import StageClock
from facefusion_ray.pipeline.swap_report import ChunkResult
from facefusion_ray.pipeline.target_input import TargetInput, open_target, stage_planned_version
from facefusion_ray.settings import SwapSettings
from facefusion_ray.storage.locations import stage_input

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderContext:
    """Everything an actor needs to render any chunk of one render; put in the object store
    once per render and passed by reference with each chunk."""

    render_key: str
    label: str
    target: str  # local path or object-store URL
    info: MediaInfo
    settings: SwapSettings
    plan: ModelPlan
    source: SourceIdentity
    work_store: str
    reference_embedding: np.ndarray | None = None
    identity_map: IdentityMap | None = None
    cache_plan: CachePlan | None = None
    storage_options: tuple[tuple[str, str], ...] = ()
    # What an A/B review measures of this render's frames (None: not reviewed).
    review: ReviewFrames | None = None
    # How the target is read (a remote one by range); None: staged like any input.
    target_input: TargetInput | None = None


# Pipelines kept per actor: a batch interleaves renders, and building one is cheap next to a
# chunk, but the sessions behind them are shared anyway.
_PIPELINES_KEPT = 16


class RenderActor:
    """A worker of the job's pool; the driver wraps it with `ray.remote` and its resources.

    Sessions are opened once per actor (per model store) and shared by the pipelines of every
    render the actor serves; nothing but the encoded segment leaves the actor's node.
    """

    def __init__(
        self, execution: ExecutionConfig, threads: int, idle_seconds: float | None = None
    ) -> None:
        """`idle_seconds`: a warm actor (one that outlives its job) exits by itself once idle
        this long; None: it lives until the job ends it."""
        # One actor per CPU: OpenCV's own thread pool would only fight the other actors.
        cv2.setNumThreads(threads)
        # An actor process starts with no root handler (records fall through to stderr, which
        # Ray captures): give it one, with the redacting filter the driver's handlers have.
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        install_redaction()
        self._clock = StageClock()
        self._execution = execution
        self._threads = threads
        self._models = JobModels(execution)
        self._pipelines: OrderedDict[str, FramePipeline] = OrderedDict()
        self._caches: dict[str | None, AnalysisCache] = {}
        self._review_frames: dict[str, ReviewFrames] = {}
        # The file each model id was opened from: a model re-pinned under the same id while
        # this actor was warm means its sessions (and stores) are stale.
        self._model_sha256s: dict[str, str] = {}
        self._jobs = 0
        self._rendering = 0
        self._last_used = time.monotonic()
        if idle_seconds is not None:
            threading.Thread(
                target=self._watch_idle, args=(idle_seconds,), name="idle-watch", daemon=True
            ).start()

    def ready(self) -> dict[str, object]:
        """Answered once the actor is placed and built (and by a warm actor to every job that
        takes it over): where it runs, how many jobs it served before, its sessions so far."""
        self._last_used = time.monotonic()
        jobs_before, self._jobs = self._jobs, self._jobs + 1
        opened, seconds = self._models.sessions_opened()
        return {
            "pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "jobs_before": jobs_before,
            "sessions_opened": opened,
            "session_seconds": seconds,
        }

    def sessions_opened(self) -> tuple[int, int, float]:
        """This actor's pid, the sessions it opened over its life and the seconds that took."""
        opened, seconds = self._models.sessions_opened()
        return os.getpid(), opened, seconds

    def idle_state(self) -> tuple[float, dict[str, float]]:
        """Seconds since the last chunk or job, and the resources this actor holds."""
        held = reserved(actor_resources(self._execution, self._threads))
        return time.monotonic() - self._last_used, held

    def _watch_idle(self, limit_seconds: float) -> None:
        """Ends this actor once it has rendered nothing for `limit_seconds`. (Not through
        `exit_actor` in a call to itself: that waits on the calls it owns and never ends.) A
        chunk that arrives in the very moment is lost with the actor and runs elsewhere."""
        while True:
            time.sleep(min(max(limit_seconds / 4, 0.5), 30.0))
            if not self._rendering and time.monotonic() - self._last_used >= limit_seconds:
                logger.info("idle for %.0f s: this warm worker exits", limit_seconds)
                ray.kill(ray.get_runtime_context().current_actor)
                return

    def render(self, context: RenderContext, chunk: Chunk, retry: bool = False) -> ChunkResult:
        """Render `chunk` into the work store; a `retry` (its first worker was lost) first looks
        for the segment that worker may have committed before it went."""
        self._rendering += 1
        self._last_used = time.monotonic()
        try:
            if retry:
                committed = committed_chunk(context, chunk)
                if committed is not None:
                    return committed
            return self._render(context, chunk)
        finally:
            self._last_used = time.monotonic()
            self._rendering -= 1

    def _render(self, context: RenderContext, chunk: Chunk) -> ChunkResult:
        self._forget_stale_models(context.plan)
        pipeline = self._pipeline_for(context)
        sessions = self._models.sessions_for(context.settings)
        # Before the snapshot: finding the source face for the review is not the render's work.
        review = self._review_probe(context)
        usage_before = sessions.stats()
        options = dict(context.storage_options)
        target = self._target(context, options)
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
                target,
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

    @staticmethod
    def _target(context: RenderContext, options: dict[str, str]) -> MediaSource:
        """This chunk's view of the target: a remote one read by range through a URL signed
        for this chunk (the index stand-in too when frames are off the constant-rate grid);
        a small one staged on this node."""
        target = context.target_input
        if target is None or target.remote is None:
            return stage_input(context.target, options)
        if target.staged_on_nodes:
            return stage_planned_version(target, options)
        varying_rate = not context.info.constant_frame_rate
        reads = context.settings.target_reads
        return open_target(target, reads, options, with_index=varying_rate, check_version=True)

    def peak_memory(self) -> int:
        return peak_memory_bytes()

    def _forget_stale_models(self, plan: ModelPlan) -> None:
        """Start over with fresh stores and sessions when a model id now names another file."""
        files = {model.model_id: model.sha256 for model in plan.models}
        if any(self._model_sha256s.get(model, sha) != sha for model, sha in files.items()):
            logger.info("a model changed since this worker opened it: reopening its models")
            self._models = JobModels(self._execution)
            self._pipelines.clear()
            self._review_frames.clear()
            self._model_sha256s.clear()
        self._model_sha256s.update(files)

    def _review_probe(self, context: RenderContext) -> ReviewProbe | None:
        """The A/B review of this chunk, with the source's embedding found once per render.
        Identity is judged by the embedded recognizer (SFace) whatever the swapper, a judge
        the swap was not made with; it is left out when no source image shows a face."""
        if context.review is None:
            return None
        settings = context.settings
        sessions = self._models.sessions_for(settings)
        spec = self._models.store_for(settings).manifest.model(EMBEDDED_RECOGNIZER)
        recognizer = load_recognizer(spec, sessions)
        frames = self._review_frames.get(context.render_key)
        if frames is None:
            options = dict(context.storage_options)
            images = [read_image(stage_input(path, options)) for path in context.source.image_paths]
            analyser = load_analyser(context.plan, settings, sessions)
            embedding = source_embedding(images, analyser, recognizer)
            frames = replace(context.review, source_embedding=embedding)
            self._review_frames[context.render_key] = frames
        return ReviewProbe(frames, recognizer)

    def _pipeline_for(self, context: RenderContext) -> FramePipeline:
        pipeline = self._pipelines.get(context.render_key)
        if pipeline is None:
            pipeline = FramePipeline(
                context.settings,
                context.plan,
                context.source,
                self._clock,
                self._models.sessions_for(context.settings),
                context.reference_embedding,
                context.identity_map,
            )
            self._pipelines[context.render_key] = pipeline
            while len(self._pipelines) > _PIPELINES_KEPT:
                self._pipelines.popitem(last=False)
        self._pipelines.move_to_end(context.render_key)
        return pipeline


def committed_chunk(context: RenderContext, chunk: Chunk) -> ChunkResult | None:
    """The chunk's result from its committed segment, or None when it has none (yet)."""
    segments = SegmentStore(context.work_store, context.render_key, dict(context.storage_options))
    record = segments.finished([chunk]).get(chunk.index)
    if record is None:
        return None
    result = record.as_chunk_result(chunk.index)
    result.worker_pid = os.getpid()
    return result


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
