"""A video render's plan: which chunks still need rendering, or that none does."""

import logging
from concurrent.futures import Future
from dataclasses import dataclass

from facefusion_ray.engine.job_options import JobOptions
from facefusion_ray.engine.job_report import FAILED, UP_TO_DATE, RenderOutcome
from facefusion_ray.engine.segment_store import SegmentStore
from facefusion_ray.pipeline.chunks import Chunk, plan_chunks
from facefusion_ray.pipeline.codec_choice import acceptable_segment_encoders
from facefusion_ray.pipeline.render_preparation import PreparedRender, finish_report
from facefusion_ray.pipeline.swap_report import SwapReport
from facefusion_ray.storage.published import still_published

logger = logging.getLogger(__name__)


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


def plan_video(
    index: int,
    prepared: PreparedRender,
    outcome: RenderOutcome,
    work_store: str,
    options: JobOptions,
    balance_over: int = 1,
) -> VideoRender | None:
    """The chunks still to render; None when the output of these inputs is already published.
    The chunks are spread over `balance_over` workers (see `chunk_balance`)."""
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
    info = prepared.info
    chunks = plan_chunks(info.frame_count, settings.chunk_frames, balance_over, info.keyframes)
    # A segment from another encoder than this render may use (a fallback of an earlier run
    # that allowed one) is rendered again.
    acceptable = acceptable_segment_encoders(settings)
    finished = {
        index: record
        for index, record in segments.finished(chunks).items()
        if (record.encoder or settings.output_video_encoder) in acceptable
    }
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


def chunk_balance(renders: int, workers: int) -> int:
    """Over how many workers each render's chunks are spread: all of them in a job of fewer
    renders than workers (a short video would leave workers idle otherwise), none in a larger
    job, whose many renders keep every worker busy: there, splitting each video further only
    multiplies the fixed costs of a chunk (two ffmpeg processes, its object-store requests, a
    task). A 24-frame clip on 8 workers is one chunk, not 8 of 3 frames. The same job plans the
    same chunks again, so a re-run resumes from its finished segments."""
    return workers if renders < workers else 1


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
    if not still_published(output, record, dict(options.storage_options)):
        return None
    return record


def fail(outcome: RenderOutcome, message: str, cause: BaseException | None = None) -> None:
    outcome.status = FAILED
    outcome.error = message
    outcome.cause = cause
    logger.error("render failed: %s", message)
