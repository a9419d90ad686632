"""Serving a chunk's per-frame analysis from the cache, and filling the cache on a miss."""

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facefusion_ray.analysis.face import Face
from facefusion_ray.cache import AnalysisCache, FrameAnalysis
from facefusion_ray.media import DecodedFrame
from facefusion_ray.pipeline.chunks import Chunk
from facefusion_ray.pipeline.stage_clock import StageClock

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachePlan:
    """Where a job's analysis is cached and under which key; travels to every actor."""

    url: str | None
    analysis_key: str
    video_fingerprint: str
    storage_options: tuple[tuple[str, str], ...] = ()

    def open(self) -> AnalysisCache:
        return AnalysisCache(self.url, dict(self.storage_options))


class ChunkAnalysis:
    """Faces for each frame of one chunk: from the cache when its frame fingerprint matches,
    from the analysis models otherwise. `finish` stores the chunk when anything was computed."""

    def __init__(
        self, cache: AnalysisCache | None, plan: CachePlan | None, chunk: Chunk, clock: StageClock
    ) -> None:
        self._cache = cache
        self._plan = plan
        self._chunk = chunk
        self._clock = clock
        self._cached: list[FrameAnalysis] | None = None
        if cache is not None and plan is not None:
            with clock.measure("cache_io"):
                self._cached = cache.lookup(
                    plan.video_fingerprint, plan.analysis_key, chunk.start, chunk.count
                )
        self._records: list[FrameAnalysis] = []
        self._frame_size: tuple[int, int] | None = None  # (width, height) of decoded frames
        self.hits = 0
        self.misses = 0
        # Cached frames whose fingerprint is not the decoded frame's (another decoder, a
        # misplaced range): analysed again, and the cached chunks holding them replaced.
        self.mismatched = 0

    def faces(
        self, offset: int, frame: DecodedFrame, analyse: Callable[[np.ndarray], list[Face]]
    ) -> list[Face]:
        if self._cache is None:
            return analyse(frame.pixels)
        with self._clock.measure("fingerprint"):
            fingerprint = frame.fingerprint()
        self._frame_size = (frame.width, frame.height)
        cached = self._cached[offset] if self._cached is not None else None
        if cached is not None and cached.frame_fingerprint == fingerprint:
            self.hits += 1
            faces = cached.faces
        else:
            self.misses += 1
            self.mismatched += int(cached is not None)
            faces = analyse(frame.pixels)
        self._records.append(FrameAnalysis(self._chunk.start + offset, fingerprint, faces))
        return faces

    def finish(self) -> None:
        if self._cache is None or self._plan is None or self.misses == 0:
            return
        plan = self._plan
        with self._clock.measure("cache_io"):
            if self.mismatched:
                chunk = self._chunk
                logger.warning(
                    "analysis cache: %d of frames %d-%d of video %s differ from their cached "
                    "fingerprints; analysed again, replacing the cached chunks",
                    self.mismatched,
                    chunk.start,
                    chunk.end - 1,
                    plan.video_fingerprint[:12],
                )
                # Checked against the frames just decoded, the chunks that disagree are removed.
                decoded = [record.frame_fingerprint for record in self._records]
                self._cache.lookup(
                    plan.video_fingerprint, plan.analysis_key, chunk.start, len(decoded), decoded
                )
            self._cache.write(
                plan.video_fingerprint, plan.analysis_key, self._records, self._frame_size
            )
