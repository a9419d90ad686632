"""The Ray actor that renders chunks: it decodes its own frame range and encodes a segment."""

import time
from pathlib import Path

import cv2

from facefusion_ray.engine.frame_pipeline import FramePipeline
from facefusion_ray.engine.plan import Chunk
from facefusion_ray.engine.report import ChunkResult
from facefusion_ray.media import MediaInfo, SegmentEncoder, iter_frames
from facefusion_ray.processors.classic_swap import AlignedSource
from facefusion_ray.settings import SwapSettings


class ChunkRenderer:
    """Plain class so it runs in-process too; the driver wraps it with `ray.remote`."""

    def __init__(self, settings: SwapSettings, source: AlignedSource) -> None:
        # One actor per CPU: OpenCV's own thread pool would only fight the other actors.
        cv2.setNumThreads(settings.threads_per_worker)
        self._settings = settings
        self._pipeline = FramePipeline(settings, source)

    def render_chunk(
        self, target: str, info: MediaInfo, chunk: Chunk, segment_path: str
    ) -> ChunkResult:
        started = time.perf_counter()
        frames = frames_with_faces = faces_swapped = 0
        assert info.fps is not None
        with SegmentEncoder(
            Path(segment_path),
            info.width,
            info.height,
            info.fps,
            quality=self._settings.output_video_quality,
            preset=self._settings.output_video_preset,
        ) as encoder:
            for frame in iter_frames(target, chunk.start, chunk.count, info):
                outcome = self._pipeline.process(frame)
                encoder.write(frame)
                frames += 1
                frames_with_faces += int(outcome.faces_detected > 0)
                faces_swapped += outcome.faces_swapped
        return ChunkResult(
            chunk.index, frames, frames_with_faces, faces_swapped, time.perf_counter() - started
        )

    def model_calls(self) -> dict[str, dict[str, float]]:
        return self._pipeline.model_calls()
