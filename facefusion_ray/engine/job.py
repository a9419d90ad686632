"""A job: many renders over one pool of Ray actors, resumable, each video assembled as soon
as its last segment exists."""

import logging
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import ray
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from facefusion_ray.assets.fetch import file_sha256

# Re-exported: tests and operators find a job's own actors by this prefix.
from facefusion_ray.engine.actor_pool import RENDER_ACTOR_PREFIX as RENDER_ACTOR_PREFIX
from facefusion_ray.engine.actor_pool import ActorPool, actor_pool
from facefusion_ray.engine.job_options import JobOptions
from facefusion_ray.engine.job_report import JobReport, RenderOutcome, job_cpu_seconds
from facefusion_ray.engine.ray_runtime import RayConnection, connect_ray
from facefusion_ray.engine.render_actor import RenderContext
from facefusion_ray.engine.render_feed import RenderFeed
from facefusion_ray.engine.render_plan import VideoRender, fail, published_counts
from facefusion_ray.engine.scheduler import ChunkDone, ChunkFailed, ChunkScheduler, ChunkTask
from facefusion_ray.engine.segment_store import default_work_store, describe
from facefusion_ray.engine.startup_report import StartupReport
from facefusion_ray.engine.target_homes import (
    JobRay,
    TargetHomes,
    join_for_node_probes,
)
from facefusion_ray.errors import FaceFusionRayError
from facefusion_ray.media.frame_sampling import sample_frame_indices
from facefusion_ray.media.process_cpu import CHILD_CPU, own_cpu_seconds
from facefusion_ray.pipeline.codec_choice import one_encoder_segments
from facefusion_ray.pipeline.output_assembly import assemble_output
from facefusion_ray.pipeline.render_preparation import finish_report, target_audio
from facefusion_ray.pipeline.render_request import RenderRequest
from facefusion_ray.pipeline.review_probe import ReviewFrames
from facefusion_ray.storage.locations import is_remote, publish_output
from facefusion_ray.storage.published import published_identity

logger = logging.getLogger(__name__)


def run_job(requests: Sequence[RenderRequest], options: JobOptions) -> JobReport:
    """Render every request; failures are reported per render, never raised (bad input too)."""
    started = time.perf_counter()
    job = JobReport(
        renders=[
            RenderOutcome(request.label, request.target, request.output) for request in requests
        ]
    )
    joined = join_for_node_probes(requests, options)
    try:
        feed = RenderFeed(
            requests,
            job.renders,
            options.work_store or default_work_store(),
            options,
            ahead=READY_VIDEOS_PER_WORKER * options.workers,
            node_probe=joined.homes,
        )
        first = feed.take(wait=True)
        if first:
            render_videos(feed, first, options, job, joined)
    finally:
        if joined.connection is not None and joined.connection.initialized:
            ray.shutdown()
    job.cpu_seconds = job_cpu_seconds(job.renders, own_cpu_seconds(), CHILD_CPU.snapshot())
    job.seconds = round(time.perf_counter() - started, 3)
    return job


def render_videos(
    feed: RenderFeed,
    first: list[VideoRender],
    options: JobOptions,
    job: JobReport,
    joined: JobRay | None = None,
) -> None:
    """Start the pool on the first prepared videos and keep feeding it as more are ready."""
    workers = options.workers
    job.workers = workers
    started = time.perf_counter()
    joined = joined or JobRay()
    connection = joined.connection or connect_ray(options.address, num_cpus=options.local_ray_cpus)
    owned = None if joined.connection else connection  # run_job disconnects from its own
    startup = job.startup = StartupReport(ray=connection.how, ray_seconds=connection.seconds)
    pool_started = time.perf_counter()
    pool = actor_pool(options, [video.prepared.plan for video in first])
    startup.actors_kept, startup.actors_retired = pool.kept, pool.retired
    job.workers = pool.workers
    scheduler = ChunkScheduler(pool.make_actor, pool.workers)
    videos: dict[int, VideoRender] = {}
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="assemble") as assembler:
            run = JobRun(scheduler, assembler, options, videos, joined.homes)
            run.add(first)
            scheduler.wait_until_ready()
            startup.actors_seconds = round(time.perf_counter() - pool_started, 3)
            job.startup_seconds = round(time.perf_counter() - started, 3)
            run.drive(feed)
            # Every chunk is done: the actors' figures are collected and Ray let go of while
            # the last video is still being assembled (a disconnect waits ~0.3 s on Ray's
            # threads, not on a CPU).
            actor_memory = actor_peak_memories(scheduler.actors())
            sessions = actor_sessions(scheduler.actors())
            release_ray(pool, scheduler, owned)
            for video in videos.values():
                video.prepared.report.startup_seconds = job.startup_seconds
                wait_for_assembly(video)
        startup.count_actors(scheduler.ready_answers, sessions)
        logger.info(startup.line())
        for video in videos.values():
            video.prepared.report.startup = startup.to_dict()
            for number, memory in actor_memory.items():
                video.prepared.report.peak_memory_bytes[f"actor_{number}"] = memory
        job.workers_replaced = scheduler.actors_replaced
        job.chunks_dispatched = scheduler.dispatched
        job.chunks_retried_after_store_errors = scheduler.store_retries
        job.scheduling_seconds = round(scheduler.driver_seconds + run.driver_seconds, 3)
    finally:
        release_ray(pool, scheduler, owned)


def release_ray(
    pool: ActorPool, scheduler: ChunkScheduler, connection: RayConnection | None
) -> None:
    """End the job's own actors and disconnect from the Ray `connection` joined or started
    (which ends a Ray it started); None: the caller disconnects. Safe to call again."""
    if not pool.kept:
        scheduler.shutdown()
    if connection is not None and connection.initialized and ray.is_initialized():
        ray.shutdown()


def wait_for_assembly(video: VideoRender) -> None:
    if video.assembly is None:
        return
    try:
        video.assembly.result()
    except (FaceFusionRayError, OSError) as error:
        output = video.prepared.request.output
        fail(video.outcome, f"assembling {output}: {error}", error)


# While renders are still being prepared, the driver looks for new ones this often.
FEED_POLL_SECONDS = 0.5
# Back-pressure, so the driver's memory and the object store's contexts do not grow with the
# catalog: new videos are taken from the feed only while fewer chunks than this (per worker)
# wait or run, and the feed prepares at most this many videos (per worker) before they are
# taken.
CHUNKS_WAITING_PER_WORKER = 4
READY_VIDEOS_PER_WORKER = 2
# While fewer targets staged whole have work than there are workers, videos are taken until
# this many times more chunks wait: a worker that runs out of work then starts a target of its
# own, instead of downloading one another node holds (see engine/chunk_queue). A catalog in
# order has all the renders of one clip in a row, and these alone would fill the queue.
WAITING_FACTOR_FOR_MORE_TARGETS = 4


class JobRun:
    """The driver's loop: new videos in, finished chunks into reports, progress and assembly."""

    def __init__(
        self,
        scheduler: ChunkScheduler,
        assembler: ThreadPoolExecutor,
        options: JobOptions,
        videos: dict[int, VideoRender],
        homes: TargetHomes | None = None,
    ) -> None:
        self._scheduler = scheduler
        self._homes = homes
        self._assembler = assembler
        self._options = options
        self._videos = videos
        # (video fingerprint, analysis key, first frame, frames) -> the chunk that analyses them
        self._leaders: dict[tuple[str, str, int, int], tuple[int, int]] = {}
        self._frames_queued = 0
        self._chunks_queued = 0
        self._chunks_done = 0
        # Chunks of failed renders that will never be done.
        self._chunks_dropped = 0
        self._videos_done = 0
        # Renders with chunks still to come, by the staged target they read.
        self._staged_targets: Counter[str] = Counter()
        # The driver's seconds queueing chunks and taking in their results.
        self.driver_seconds = 0.0

    def add(self, videos: list[VideoRender]) -> None:
        started = time.perf_counter()
        for video in videos:
            self._videos[video.index] = video
            queue_chunks(video, self._scheduler, self._options, self._leaders)
            self._chunks_queued += len(video.remaining)
            self._frames_queued += sum(
                chunk.count for chunk in video.chunks if chunk.index in video.remaining
            )
            if not video.remaining:
                self._assemble(video)
            elif place := staged_place(video):
                self._staged_targets[place] += 1
        self.driver_seconds += time.perf_counter() - started

    def drive(self, feed: RenderFeed) -> None:
        with (
            logging_redirect_tqdm(),
            tqdm(
                total=self._frames_queued,
                unit="frame",
                desc="render",
                disable=not self._options.show_progress,
                mininterval=0.5,
                dynamic_ncols=True,
            ) as progress,
        ):
            while True:
                if not feed.finished and self._wants_videos():
                    self.add(feed.take(wait=not self._scheduler.busy()))
                    progress.total = self._frames_queued
                if not self._scheduler.busy() and feed.finished:
                    break
                timeout = None if feed.finished else FEED_POLL_SECONDS
                events = self._scheduler.step(timeout)
                if self._homes is not None:
                    self._homes.use_actor_nodes(self._scheduler.actor_nodes())
                started = time.perf_counter()
                for event in events:
                    self._handle(event, progress)
                self.driver_seconds += time.perf_counter() - started
                progress.set_postfix_str(
                    f"videos {self._videos_done}/{len(self._videos)} "
                    f"chunks {self._chunks_done}/{self._chunks_queued}",
                    refresh=False,
                )

    def _handle(self, event: ChunkDone | ChunkFailed, progress: tqdm) -> None:
        video = self._videos[event.task.render]
        chunk = event.task.chunk
        if isinstance(event, ChunkFailed):
            target = video.prepared.request.target
            fail(video.outcome, f"{target}: frames {describe(chunk)}: {event.reason}", event.error)
            self._scheduler.cancel_render(video.index)
            dropped = sum(other.count for other in video.chunks if other.index in video.remaining)
            self._frames_queued -= dropped
            progress.total = self._frames_queued
            self._chunks_dropped += len(video.remaining)
            video.remaining.clear()
            self._forget_target(video)
            return
        video.prepared.report.add_chunk(event.result)
        if event.result.review is not None:
            video.outcome.reviews.append(event.result.review)
        video.remaining.discard(chunk.index)
        self._chunks_done += 1
        progress.update(event.result.frames)
        if not video.remaining:
            self._forget_target(video)
            self._assemble(video)

    def _chunks_waiting(self) -> int:
        """Chunks queued, waiting for their leader, or in flight."""
        return self._chunks_queued - self._chunks_done - self._chunks_dropped

    def _wants_videos(self) -> bool:
        waiting, limit = self._chunks_waiting(), CHUNKS_WAITING_PER_WORKER * self._options.workers
        if waiting < limit:
            return True
        few_targets = 0 < len(self._staged_targets) < self._options.workers
        return few_targets and waiting < WAITING_FACTOR_FOR_MORE_TARGETS * limit

    def _forget_target(self, video: VideoRender) -> None:
        place = staged_place(video)
        if place:
            self._staged_targets[place] -= 1
            if not self._staged_targets[place]:
                del self._staged_targets[place]

    def _assemble(self, video: VideoRender) -> None:
        video.assembly = self._assembler.submit(assemble, video, self._options)
        self._videos_done += 1


def actor_peak_memories(actors: Sequence[Any]) -> dict[int, int]:
    """Peak memory by actor number; an actor lost after its last chunk (its node removed, say)
    is left out instead of failing a job whose outputs are all published."""
    pending = [actor.peak_memory.remote() for actor in actors]
    memories: dict[int, int] = {}
    for number, reference in enumerate(pending):
        try:
            memories[number] = ray.get(reference)
        except ray.exceptions.RayActorError:
            logger.warning("render actor %d is gone; its peak memory is not reported", number)
    return memories


def actor_sessions(actors: Sequence[Any]) -> dict[int, tuple[int, float]]:
    """Sessions each actor has opened so far and the seconds that took, by its pid."""
    sessions: dict[int, tuple[int, float]] = {}
    for reference in [actor.sessions_opened.remote() for actor in actors]:
        try:
            pid, opened, seconds = ray.get(reference)
        except ray.exceptions.RayActorError:
            continue
        sessions[pid] = (opened, seconds)
    return sessions


def queue_chunks(
    video: VideoRender,
    scheduler: ChunkScheduler,
    options: JobOptions,
    leaders: dict[tuple[str, str, int, int], tuple[int, int]],
) -> None:
    """One task per missing chunk; renders of the same frames with the same analysis wait for
    the first of them, so the target is analysed once and the others read the cache."""
    context = ray.put(render_context(video, options))
    plan = video.prepared.cache_plan
    place = staged_place(video)
    for chunk in video.chunks:
        if chunk.index not in video.remaining:
            continue
        task = ChunkTask(video.index, chunk, context, place=place, home=video.prepared.home_node)
        if plan is not None:
            analysis = (plan.video_fingerprint, plan.analysis_key, chunk.start, chunk.count)
            task.leader = leaders.setdefault(analysis, task.key)
            if task.leader == task.key:
                task.leader = None
        scheduler.add(task)


def staged_place(video: VideoRender) -> str | None:
    """The identity of the target copy each node stages for this render (None: none)."""
    target = video.prepared.target_input
    return None if target is None else target.staged_identity


def render_context(video: VideoRender, options: JobOptions) -> RenderContext:
    prepared = video.prepared
    review = None
    if options.review is not None:
        count = prepared.info.frame_count
        review = ReviewFrames(
            tuple(sample_frame_indices(count, options.review.sheet_frames)),
            tuple(sample_frame_indices(count, options.review.identity_count(count))),
        )
    assert prepared.render_key is not None
    return RenderContext(
        render_key=prepared.render_key,
        label=prepared.request.label,
        target=prepared.request.target,
        target_input=prepared.target_input,
        info=prepared.info,
        settings=prepared.request.settings,
        plan=prepared.plan,
        source=prepared.identity,
        work_store=video.segments.url,
        reference_embedding=prepared.reference,
        identity_map=prepared.identity_map,
        cache_plan=prepared.cache_plan,
        storage_options=options.storage_options,
        review=review,
    )


def assemble(video: VideoRender, options: JobOptions) -> None:
    """Concatenate the segments with the target's audio and publish the output atomically."""
    prepared = video.prepared
    output = prepared.request.output
    settings = prepared.request.settings
    storage_options = dict(options.storage_options)
    # Only the audio is read from the target (a remote one's from its index stand-in).
    target = target_audio(prepared, storage_options) if prepared.info.has_audio else None
    encoders = video.segments.encoders(video.chunks, settings.output_video_encoder)
    with (
        video.segments.local_segments(video.chunks) as stored,
        one_encoder_segments(stored, encoders, settings, prepared.report.notes) as segments,
    ):
        if is_remote(output):
            with tempfile.TemporaryDirectory(prefix="facefusion-ray-output-") as scratch:
                local = Path(scratch) / Path(output).name
                assemble_output(segments, target, prepared.info, local, prepared.report)
                sha256 = file_sha256(local)
                publish_output(local, output, storage_options)
        else:
            assemble_output(segments, target, prepared.info, Path(output), prepared.report)
            sha256 = file_sha256(Path(output))
    identity = published_identity(output, sha256, storage_options)
    video.segments.record_published(output, identity, published_counts(prepared.report))
    video.segments.discard_segments()
    finish_report(prepared)
    logger.info(prepared.report.summary())
