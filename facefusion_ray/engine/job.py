"""A job: many renders over one pool of Ray actors, resumable, each video assembled as soon
as its last segment exists."""

import logging
import tempfile
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import ray
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from facefusion_ray.engine.assembly import assemble_output
from facefusion_ray.engine.job_report import FAILED, UP_TO_DATE, JobReport, RenderOutcome
from facefusion_ray.engine.plan import Chunk, plan_chunks
from facefusion_ray.engine.ray_runtime import ensure_ray
from facefusion_ray.engine.render_actor import RenderActor, RenderContext, peak_memory_bytes
from facefusion_ray.engine.render_preparation import PreparedRender, driver_sessions, prepare_render
from facefusion_ray.engine.render_request import RenderRequest
from facefusion_ray.engine.report import SwapReport
from facefusion_ray.engine.scheduler import ChunkDone, ChunkFailed, ChunkScheduler, ChunkTask
from facefusion_ray.engine.segment_store import SegmentStore, default_work_store, describe
from facefusion_ray.engine.still_image import render_still_image
from facefusion_ray.errors import FaceFusionRayError
from facefusion_ray.models.execution import ExecutionConfig, actor_resources
from facefusion_ray.storage import object_store
from facefusion_ray.storage.locations import is_remote, output_exists, publish_output

logger = logging.getLogger(__name__)

NO_FACE_NOTE = "no face found in the target: the output equals the input"
RENDER_ACTOR_PREFIX = "facefusion-ray-render-"


@dataclass(frozen=True)
class JobOptions:
    """What the whole job shares: the actor pool, the stores, and how it reports."""

    workers: int = 2
    threads_per_worker: int = 1
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    address: str | None = None
    # Where segments wait for assembly (None: this machine's cache folder); shared storage
    # (s3://...) when the workers are on other machines than the driver.
    work_store: str | None = None
    storage_options: tuple[tuple[str, str], ...] = ()
    show_progress: bool = True
    # Render even when the output of the same inputs is already published.
    force: bool = False
    # Frames per render whose swapped faces' landmarks are recorded (for A/B similarity), the
    # same frames `comparison.sample_frame_indices` picks for a contact sheet.
    landmark_samples: int = 0


@dataclass
class VideoRender:
    """A video render in progress: its plan and what is done."""

    index: int
    prepared: PreparedRender
    chunks: list[Chunk]
    segments: SegmentStore
    remaining: set[int]
    outcome: RenderOutcome
    assembly: Future[None] | None = None


def run_job(requests: Sequence[RenderRequest], options: JobOptions) -> JobReport:
    """Render every request; failures are reported per render, never raised (bad input too)."""
    started = time.perf_counter()
    job = JobReport()
    work_store = options.work_store or default_work_store()
    storage_options = dict(options.storage_options)
    models = driver_sessions()
    videos: list[VideoRender] = []
    for request in requests:
        outcome = RenderOutcome(request.label, request.target, request.output)
        job.renders.append(outcome)
        try:
            prepared = prepare_render(request, models, storage_options)
            outcome.report = prepared.report
            if prepared.info.kind == "image":
                render_still_image(prepared, storage_options)
                finish_report(prepared)
                continue
            video = plan_video(len(videos), prepared, outcome, work_store, options)
        except (FaceFusionRayError, OSError) as error:
            fail(outcome, str(error), error)
            continue
        if video is not None:
            videos.append(video)
    if videos:
        render_videos(videos, options, job)
    job.seconds = round(time.perf_counter() - started, 3)
    return job


def plan_video(
    index: int,
    prepared: PreparedRender,
    outcome: RenderOutcome,
    work_store: str,
    options: JobOptions,
) -> VideoRender | None:
    """The chunks still to render; None when the output of these inputs is already published."""
    assert prepared.render_key is not None
    request, settings = prepared.request, prepared.request.settings
    segments = SegmentStore(work_store, prepared.render_key, dict(options.storage_options))
    published = None if options.force else published_record(segments, request.output, options)
    if published is not None:
        counts = published.get("counts")
        if isinstance(counts, dict):
            for name in PUBLISHED_COUNTS:
                setattr(prepared.report, name, int(counts.get(name, 0)))
        outcome.status = UP_TO_DATE
        prepared.report.up_to_date = True
        prepared.report.notes.append("output already rendered from the same inputs; skipped")
        finish_report(prepared)
        logger.info("%s: up to date (%s)", request.label, request.output)
        return None
    chunks = plan_chunks(prepared.info.frame_count, settings.chunk_frames, options.workers)
    finished = segments.finished(chunks)
    prepared.report.chunks = len(chunks)
    prepared.report.workers = options.workers
    prepared.report.chunks_skipped = len(finished)
    logger.info(
        "%s: %d frames in %d chunks to render%s",
        request.label,
        prepared.info.frame_count,
        len(chunks) - len(finished),
        f" ({len(finished)} already rendered by an earlier run)" if finished else "",
    )
    for chunk in chunks:
        record = finished.get(chunk.index)
        if record is not None:
            prepared.report.add_chunk(record.as_chunk_result(chunk.index))
    remaining = {chunk.index for chunk in chunks} - set(finished)
    return VideoRender(index, prepared, chunks, segments, remaining, outcome)


# Report fields a published render records, so an up-to-date re-run still reports them.
PUBLISHED_COUNTS = (
    "frames_total",
    "frames_with_faces",
    "frames_swapped",
    "faces_swapped",
    "chunks",
)


def published_counts(report: SwapReport) -> dict[str, int]:
    return {name: int(getattr(report, name)) for name in PUBLISHED_COUNTS}


def published_record(
    segments: SegmentStore, output: str, options: JobOptions
) -> dict[str, object] | None:
    """The record of this render's output when that output is still there, unchanged."""
    record = segments.published_output()
    if record is None or record.get("output") != output:
        return None
    storage_options = dict(options.storage_options)
    if not output_exists(output, storage_options):
        return None
    filesystem, path = object_store.open_filesystem(output, storage_options)
    if object_store.object_size(filesystem, path) != record.get("bytes"):
        return None
    return record


def render_videos(videos: list[VideoRender], options: JobOptions, job: JobReport) -> None:
    workers = options.workers
    job.workers = workers
    started = time.perf_counter()
    started_ray = ensure_ray(options.address, num_cpus=workers * options.threads_per_worker)
    renderer = ray.remote(RenderActor)
    resources = actor_resources(options.execution, options.threads_per_worker)
    # Named per job, so operators (and tests) can find a job's actors in the cluster.
    job_name = f"{RENDER_ACTOR_PREFIX}{uuid.uuid4().hex[:8]}"
    scheduler = ChunkScheduler(
        lambda number: renderer.options(
            name=f"{job_name}-{number}", max_restarts=0, **resources
        ).remote(options.execution, options.threads_per_worker),
        workers,
    )
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="assemble") as assembler:
            queue_chunks(videos, scheduler, options)
            scheduler.wait_until_ready()
            job.startup_seconds = round(time.perf_counter() - started, 3)
            for video in videos:
                video.prepared.report.startup_seconds = job.startup_seconds
                if not video.remaining:
                    video.assembly = assembler.submit(assemble, video, options)
            drive(videos, scheduler, assembler, options)
            for video in videos:
                if video.assembly is not None:
                    try:
                        video.assembly.result()
                    except (FaceFusionRayError, OSError) as error:
                        output = video.prepared.request.output
                        fail(video.outcome, f"assembling {output}: {error}", error)
        actor_memory = ray.get([actor.peak_memory.remote() for actor in scheduler.actors()])
        for video in videos:
            for number, memory in enumerate(actor_memory):
                video.prepared.report.peak_memory_bytes[f"actor_{number}"] = memory
        job.workers_replaced = scheduler.actors_replaced
    finally:
        scheduler.shutdown()
        if started_ray:
            ray.shutdown()


def queue_chunks(videos: list[VideoRender], scheduler: ChunkScheduler, options: JobOptions) -> None:
    """One task per missing chunk; renders of the same frames with the same analysis wait for
    the first of them, so the target is analysed once and the others read the cache."""
    leaders: dict[tuple[str, str, int, int], tuple[int, int]] = {}
    for video in videos:
        prepared = video.prepared
        context = ray.put(render_context(video, options))
        plan = prepared.cache_plan
        for chunk in video.chunks:
            if chunk.index not in video.remaining:
                continue
            task = ChunkTask(video.index, chunk, context)
            if plan is not None:
                analysis = (plan.video_fingerprint, plan.analysis_key, chunk.start, chunk.count)
                task.leader = leaders.setdefault(analysis, task.key)
                if task.leader == task.key:
                    task.leader = None
            scheduler.add(task)


def render_context(video: VideoRender, options: JobOptions) -> RenderContext:
    prepared = video.prepared
    samples: frozenset[int] = frozenset()
    if options.landmark_samples > 0:
        from facefusion_ray.comparison.frames import sample_frame_indices

        samples = frozenset(
            sample_frame_indices(prepared.info.frame_count, options.landmark_samples)
        )
    assert prepared.render_key is not None
    return RenderContext(
        render_key=prepared.render_key,
        label=prepared.request.label,
        target=prepared.request.target,
        info=prepared.info,
        settings=prepared.request.settings,
        source=prepared.identity,
        work_store=video.segments.url,
        reference_embedding=prepared.reference,
        identity_map=prepared.identity_map,
        cache_plan=prepared.cache_plan,
        storage_options=options.storage_options,
        sample_frames=samples,
    )


def drive(
    videos: list[VideoRender],
    scheduler: ChunkScheduler,
    assembler: ThreadPoolExecutor,
    options: JobOptions,
) -> None:
    """Feeds finished chunks into the reports, the progress bar and assembly."""
    chunk_total = sum(len(video.remaining) for video in videos)
    frames_total = sum(
        chunk.count for video in videos for chunk in video.chunks if chunk.index in video.remaining
    )
    videos_done = sum(1 for video in videos if not video.remaining)
    chunks_done = 0
    with (
        logging_redirect_tqdm(),
        tqdm(
            total=frames_total,
            unit="frame",
            desc="render",
            disable=not options.show_progress,
            mininterval=0.5,
            dynamic_ncols=True,
        ) as progress,
    ):
        progress.set_postfix_str(f"videos {videos_done}/{len(videos)}", refresh=False)
        for event in scheduler.run():
            video = videos[event.task.render]
            chunk = event.task.chunk
            if isinstance(event, ChunkFailed):
                target = video.prepared.request.target
                message = f"{target}: frames {describe(chunk)}: {event.reason}"
                fail(video.outcome, message, event.error)
                scheduler.cancel_render(video.index)
                progress.total -= sum(
                    other.count for other in video.chunks if other.index in video.remaining
                )
                video.remaining.clear()
                continue
            assert isinstance(event, ChunkDone)
            video.prepared.report.add_chunk(event.result)
            video.outcome.swapped_landmarks.update(event.result.swapped_landmarks)
            video.remaining.discard(chunk.index)
            chunks_done += 1
            progress.update(event.result.frames)
            if not video.remaining:
                video.assembly = assembler.submit(assemble, video, options)
                videos_done += 1
            progress.set_postfix_str(
                f"videos {videos_done}/{len(videos)} chunks {chunks_done}/{chunk_total}",
                refresh=False,
            )


def assemble(video: VideoRender, options: JobOptions) -> None:
    """Concatenate the segments with the target's audio and publish the output atomically."""
    prepared = video.prepared
    output = prepared.request.output
    storage_options = dict(options.storage_options)
    with video.segments.local_segments(video.chunks) as segments:
        if is_remote(output):
            with tempfile.TemporaryDirectory(prefix="facefusion-ray-output-") as scratch:
                local = Path(scratch) / Path(output).name
                assemble_output(segments, prepared.target, prepared.info, local, prepared.report)
                size = local.stat().st_size
                publish_output(local, output, storage_options)
        else:
            assemble_output(segments, prepared.target, prepared.info, Path(output), prepared.report)
            size = Path(output).stat().st_size
    video.segments.record_published(output, size, published_counts(prepared.report))
    video.segments.discard_segments()
    finish_report(prepared)
    logger.info(prepared.report.summary())


def finish_report(prepared: PreparedRender) -> None:
    report = prepared.report
    report.peak_memory_bytes["driver"] = peak_memory_bytes()
    if report.frames_total and report.frames_with_faces == 0 and NO_FACE_NOTE not in report.notes:
        report.notes.append(NO_FACE_NOTE)
        logger.warning("%s: %s", prepared.request.target, NO_FACE_NOTE)
    report.seconds = round(time.perf_counter() - prepared.started, 3)


def fail(outcome: RenderOutcome, message: str, cause: BaseException | None = None) -> None:
    outcome.status = FAILED
    outcome.error = message
    outcome.cause = cause
    logger.error("render failed: %s", message)
