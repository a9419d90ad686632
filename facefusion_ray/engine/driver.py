"""The driver: plans chunks, keeps a bounded number in flight per actor, reassembles."""

import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import ray
from tqdm import tqdm

from facefusion_ray.analysis.arcface import ArcFaceRecognizer
from facefusion_ray.cache import video_fingerprint
from facefusion_ray.engine.analysis_key import analysis_settings
from facefusion_ray.engine.assembly import assemble_output, segment_folder
from facefusion_ray.engine.cached_analysis import CachePlan
from facefusion_ray.engine.frame_pipeline import FramePipeline, open_session_factory
from facefusion_ray.engine.identity_map import build_identity_map
from facefusion_ray.engine.model_set import check_models_exist, load_analyser
from facefusion_ray.engine.plan import Chunk, plan_chunks
from facefusion_ray.engine.ray_runtime import ensure_ray
from facefusion_ray.engine.reference import reference_embedding_for
from facefusion_ray.engine.render_actor import ChunkRenderer, peak_memory_bytes
from facefusion_ray.engine.report import ChunkResult, SwapReport, write_report
from facefusion_ray.engine.sequential import render_video_sequential
from facefusion_ray.engine.sources import IdentityMap, SourceIdentity, prepare_source_identity
from facefusion_ray.engine.stage_clock import StageClock
from facefusion_ray.errors import FaceFusionRayError, MediaError
from facefusion_ray.media import MediaInfo, probe_media, read_image
from facefusion_ray.media.encode import SEGMENT_SUFFIX
from facefusion_ray.media.images import write_image_atomic
from facefusion_ray.models.execution import ExecutionConfig, actor_resources
from facefusion_ray.settings import IMAGE_SUFFIXES, VIDEO_SUFFIXES, SwapSettings

logger = logging.getLogger(__name__)

# One chunk running and one queued per actor: the actor never idles between chunks,
# and the driver never holds more than a handful of references.
CHUNKS_IN_FLIGHT_PER_ACTOR = 2
# FaceFusion derives every neural swapper's source identity from this recognizer.
SOURCE_RECOGNIZER = "arcface_w600k_r50"
NO_FACE_NOTE = "no face found in the target: the output equals the input"


def run_swap(
    sources: Sequence[Path],
    target: Path,
    output: Path,
    settings: SwapSettings,
    report_path: Path | None = None,
    address: str | None = None,
    show_progress: bool = True,
    sequential: bool = False,
) -> SwapReport:
    """Render one target; `sequential` runs the single-process loop instead of Ray."""
    started = time.perf_counter()
    info = probe_media(target)
    check_output_path(output, info)
    # Source images are few and small: the driver analyses them on CPU wherever it runs.
    check_models_exist(settings)
    driver_sessions = open_session_factory(ExecutionConfig(), settings)
    embedder = (
        None
        if settings.uses_classic_swapper
        else ArcFaceRecognizer(driver_sessions.get(SOURCE_RECOGNIZER))
    )
    detector = load_analyser(settings, driver_sessions)
    identity_map: IdentityMap | None = None
    if settings.face_selector.mode == "identity-map":
        per_source = [prepare_source_identity([path], detector, embedder) for path in sources]
        identity = per_source[0]
        identity_map = build_identity_map(target, info, settings, driver_sessions, per_source)
    else:
        identity = prepare_source_identity(sources, detector, embedder)
    report = SwapReport(
        target=str(target),
        sources=[str(path) for path in sources],
        output=str(output),
        kind=info.kind,
    )
    reference = reference_embedding_for(target, info, settings, driver_sessions)
    report.source_model_calls = {
        model: int(usage["calls"]) for model, usage in driver_sessions.stats().items()
    }
    cache_plan = plan_analysis_cache(settings, target) if info.kind == "video" else None
    if info.kind == "image":
        render_image(target, output, settings, identity, report, reference, identity_map)
    elif sequential:
        render_video_sequential(
            target, info, output, settings, identity, report, reference, cache_plan, identity_map
        )
    else:
        render_video(
            target,
            info,
            output,
            settings,
            identity,
            report,
            address,
            show_progress,
            reference,
            cache_plan,
            identity_map,
        )
    report.peak_memory_bytes["driver"] = peak_memory_bytes()
    if report.frames_with_faces == 0:
        report.notes.append(NO_FACE_NOTE)
        logger.warning("%s: %s", target, NO_FACE_NOTE)
    report.seconds = round(time.perf_counter() - started, 3)
    if report_path is not None:
        write_report(report, report_path)
    logger.info(report.summary())
    return report


def plan_analysis_cache(settings: SwapSettings, target: Path) -> CachePlan | None:
    """The cache entry this render reads and fills, unless the cache is switched off."""
    if not settings.use_analysis_cache:
        return None
    key = analysis_settings(settings).analysis_key()
    return CachePlan(settings.analysis_cache, key, video_fingerprint(target))


def check_output_path(output: Path, info: MediaInfo) -> None:
    allowed = VIDEO_SUFFIXES if info.kind == "video" else IMAGE_SUFFIXES
    if output.suffix.lower() not in allowed:
        raise MediaError(
            f"output {output} must end in one of {', '.join(allowed)} for a {info.kind} target"
        )
    if output.exists() and output.is_dir():
        raise MediaError(f"output is a directory: {output}")
    output.parent.mkdir(parents=True, exist_ok=True)


def render_image(
    target: Path,
    output: Path,
    settings: SwapSettings,
    source: SourceIdentity,
    report: SwapReport,
    reference_embedding: np.ndarray | None = None,
    identity_map: IdentityMap | None = None,
) -> None:
    pipeline = FramePipeline(settings, source, StageClock(), reference_embedding, identity_map)
    frame = read_image(target)
    outcome = pipeline.process(frame)
    write_image_atomic(output, frame)
    report.add_chunk(ChunkResult(0, 1, int(outcome.faces_detected > 0), outcome.faces_swapped, 0))
    report.chunks = 1
    report.workers = 1
    report.add_model_stats(pipeline.model_calls())


def render_video(
    target: Path,
    info: MediaInfo,
    output: Path,
    settings: SwapSettings,
    source: SourceIdentity,
    report: SwapReport,
    address: str | None,
    show_progress: bool,
    reference_embedding: np.ndarray | None = None,
    cache_plan: CachePlan | None = None,
    identity_map: IdentityMap | None = None,
) -> None:
    assert info.fps is not None
    chunks = plan_chunks(info.frame_count, settings.chunk_frames, settings.workers)
    workers = min(settings.workers, len(chunks))
    report.chunks = len(chunks)
    report.workers = workers
    started = time.perf_counter()
    started_ray = ensure_ray(address, num_cpus=workers * settings.threads_per_worker)
    try:
        with segment_folder(output) as work_dir:
            renderer_class = ray.remote(ChunkRenderer).options(
                **actor_resources(settings.execution, settings.threads_per_worker),
                max_restarts=2,
                max_task_retries=2,
            )
            # Held for the whole job, so a restarted actor can still read its arguments.
            source_reference = ray.put(source)
            actors = [
                renderer_class.remote(
                    settings, source_reference, reference_embedding, cache_plan, identity_map
                )
                for _ in range(workers)
            ]
            # Start-up (Ray, actors, model sessions) is reported apart from rendering, because
            # a long job or a shared pool pays it once.
            ray.get([actor.peak_memory.remote() for actor in actors])
            report.startup_seconds = round(time.perf_counter() - started, 3)
            segments = [work_dir / f"segment-{chunk.index:06d}{SEGMENT_SUFFIX}" for chunk in chunks]
            with tqdm(
                total=info.frame_count,
                unit="frame",
                desc=f"swap {target.name}",
                disable=not show_progress,
                mininterval=0.5,
                dynamic_ncols=True,
            ) as progress:
                for finished, result in enumerate(
                    render_chunks(actors, str(target), info, chunks, segments), start=1
                ):
                    report.add_chunk(result)
                    progress.set_postfix_str(f"chunks {finished}/{len(chunks)}", refresh=False)
                    progress.update(result.frames)
            for stats in ray.get([actor.model_calls.remote() for actor in actors]):
                report.add_model_stats(stats)
            for index, memory in enumerate(
                ray.get([actor.peak_memory.remote() for actor in actors])
            ):
                report.peak_memory_bytes[f"actor_{index}"] = memory
            for actor in actors:
                ray.kill(actor)
            assemble_output(segments, target, info, output, report)
    finally:
        if started_ray:
            ray.shutdown()


def render_chunks(
    actors: Sequence[ray.actor.ActorHandle],
    target: str,
    info: MediaInfo,
    chunks: Sequence[Chunk],
    segments: Sequence[Path],
) -> Iterator[ChunkResult]:
    """Yields chunk results as they finish, never more than a fixed number in flight per actor."""
    pending = deque(chunks)
    in_flight: dict[ray.ObjectRef, int] = {}
    load = [0] * len(actors)
    while pending or in_flight:
        while pending and min(load) < CHUNKS_IN_FLIGHT_PER_ACTOR:
            actor_index = load.index(min(load))
            chunk = pending.popleft()
            reference = actors[actor_index].render_chunk.remote(
                target, info, chunk, str(segments[chunk.index])
            )
            in_flight[reference] = actor_index
            load[actor_index] += 1
        done, _ = ray.wait(list(in_flight), num_returns=1)
        for reference in done:
            load[in_flight.pop(reference)] -= 1
            yield unwrap_task_result(reference)


def unwrap_task_result(reference: ray.ObjectRef) -> ChunkResult:
    """ray.get, but a user-facing error raised in an actor comes back as itself."""
    try:
        return ray.get(reference)
    except ray.exceptions.RayTaskError as error:
        cause = error.cause
        if isinstance(cause, FaceFusionRayError):
            raise cause from None
        raise
