"""A chunk of a video through the pipeline: decode its range, analyse (or read the analysis
cache), swap, encode the segment. Shared by the Ray actors and the sequential baseline."""

import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facefusion_ray.analysis.face import Face
from facefusion_ray.cache import AnalysisCache
from facefusion_ray.media import DecodedFrame, MediaInfo, iter_decoded_frames
from facefusion_ray.media.plane_edit import PlaneEdit
from facefusion_ray.media.process_cpu import CHILD_CPU, cpu_delta, own_cpu_seconds
from facefusion_ray.media.remote_media import MediaSource
from facefusion_ray.pipeline.cached_analysis import CachePlan, ChunkAnalysis
from facefusion_ray.pipeline.chunks import Chunk
from facefusion_ray.pipeline.codec_choice import segment_encoder, usable_codecs
from facefusion_ray.pipeline.frame_pipeline import FrameOutcome, FramePipeline
from facefusion_ray.pipeline.pipe_overlap import ReadAhead, WriteBehind
from facefusion_ray.pipeline.review_probe import ReviewProbe
from facefusion_ray.pipeline.stage_clock import StageClock
from facefusion_ray.pipeline.swap_report import FRAME_LOOP_CPU, ChunkResult
from facefusion_ray.settings import SwapSettings


def timed_frames(frames: Iterator[DecodedFrame], clock: StageClock) -> Iterator[DecodedFrame]:
    """Charges the time spent waiting for each decoded frame to the `decode` stage."""
    while True:
        with clock.measure("decode"):
            frame = next(frames, None)
        if frame is None:
            return
        yield frame


@dataclass
class _ChunkCounts:
    frames: int = 0
    frames_with_faces: int = 0
    frames_swapped: int = 0
    faces_swapped: int = 0

    def add(self, outcome: FrameOutcome) -> None:
        self.frames += 1
        self.frames_with_faces += int(outcome.faces_detected > 0)
        self.faces_swapped += outcome.faces_swapped
        self.frames_swapped += int(outcome.faces_swapped > 0)


def render_range(
    pipeline: FramePipeline,
    clock: StageClock,
    settings: SwapSettings,
    target: MediaSource,
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
    counts = _ChunkCounts()
    stages_before = clock.snapshot()
    codecs = usable_codecs(settings)  # this node's choice: the driver may lack a GPU
    encoder = segment_encoder(segment_path, info, settings, codecs.encoder)
    analysis = ChunkAnalysis(cache, cache_plan, chunk, clock)
    cpu_before = _cpu_snapshot()
    decoded = iter_decoded_frames(target, chunk.start, chunk.count, info, codecs.hwaccel)
    # The decoder reads ahead and the encoder writes behind in threads of their own: `decode`
    # and `encode` are the time this loop waited for them.
    with ReadAhead(decoded) as frames, WriteBehind(encoder) as writer:
        for offset, decoded_frame in enumerate(timed_frames(iter(frames), clock)):
            faces = analysis.faces(offset, decoded_frame, pipeline.analyse)
            outcome, output = _render_frame(
                pipeline, clock, review, chunk.start + offset, decoded_frame, faces
            )
            with clock.measure("encode"):
                writer.write(output)
            counts.add(outcome)
        with clock.measure("encode"):
            writer.close()
    analysis.finish()
    stages = {
        stage: round(seconds - stages_before.get(stage, 0.0), 6)
        for stage, seconds in clock.snapshot().items()
    }
    return ChunkResult(
        chunk.index,
        counts.frames,
        counts.frames_with_faces,
        counts.faces_swapped,
        time.perf_counter() - started,
        stages,
        cache_hits=analysis.hits,
        cache_misses=analysis.misses,
        frames_swapped=counts.frames_swapped,
        review=review.result if review is not None else None,
        cpu_seconds=cpu_delta(cpu_before, _cpu_snapshot()),
        encoder=codecs.encoder,
        notes=codecs.notes,
    )


def _cpu_snapshot() -> dict[str, float]:
    """CPU seconds so far of this process (all threads) and of its ffmpeg children by kind."""
    children = {f"ffmpeg_{kind}": seconds for kind, seconds in CHILD_CPU.snapshot().items()}
    return {FRAME_LOOP_CPU: own_cpu_seconds(), **children}


def _render_frame(
    pipeline: FramePipeline,
    clock: StageClock,
    review: ReviewProbe | None,
    frame_index: int,
    decoded_frame: DecodedFrame,
    faces: list[Face],
) -> tuple[FrameOutcome, np.ndarray]:
    """The frame's outcome and what to encode: its 4:2:0 planes, changed only where faces
    were swapped (BGR only there, or everywhere for a review), else the swapped BGR frame."""
    if decoded_frame.planes is None:
        frame = decoded_frame.pixels
        return _swap_frame(pipeline, clock, review, frame_index, frame, faces), frame
    chosen = pipeline.choose(faces)
    shape = (decoded_frame.height, decoded_frame.width, 3)
    boxes = pipeline.reach(faces, chosen, shape)
    if boxes == [] and review is None:
        return FrameOutcome(len(faces), 0), decoded_frame.planes  # untouched: as decoded
    with clock.measure("convert"):
        # The review looks at the whole frame; the processors still write only in `boxes`.
        edit = PlaneEdit(decoded_frame, boxes, whole_canvas=review is not None)
    outcome = _swap_frame(pipeline, clock, review, frame_index, edit.canvas, faces, chosen)
    with clock.measure("convert"):
        return outcome, edit.finish()


def _swap_frame(
    pipeline: FramePipeline,
    clock: StageClock,
    review: ReviewProbe | None,
    frame_index: int,
    frame: np.ndarray,
    faces: list[Face],
    chosen: list[Face] | None = None,
) -> FrameOutcome:
    """Swap the analysed faces into the BGR frame in place, with the review's looks before
    and after when the render is reviewed."""
    if review is not None:
        with clock.measure("review"):
            review.before_swap(frame_index, frame, faces)
    outcome = pipeline.apply(frame, faces, chosen)
    if review is not None:
        with clock.measure("review"):
            review.after_swap(frame_index, frame, outcome.faces_detected, outcome.swapped)
    return outcome


def peak_memory_bytes() -> int:
    """Peak resident memory of this process since it started its program.

    Linux's VmHWM, which starts again at exec; getrusage's ru_maxrss keeps the peak the
    process had before exec, i.e. what its parent held when it forked (a benchmark harness that
    had just written a 683 MB model made a small driver report 4.3 GB). ffmpeg children are not
    counted. Elsewhere, ru_maxrss.
    """
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        status = ""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
