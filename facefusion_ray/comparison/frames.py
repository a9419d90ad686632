"""Choosing which frames of a render to look at, and decoding just those frames."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np

from facefusion_ray.errors import MediaError
from facefusion_ray.media.container_header import read_container_header
from facefusion_ray.media.decode import iter_frames
from facefusion_ray.media.probe import MediaInfo, probe_media
from facefusion_ray.settings import SwapSettings

# Sampled frames closer than this are decoded in one run instead of a new seek. Rendered videos
# are joined from segments of the default chunk length, each starting with a keyframe, so a
# seek saves little unless it skips about a segment; a new ffmpeg process costs a few frames.
MERGE_GAP_FRAMES = SwapSettings().chunk_frames


def frame_runs(indices: Iterable[int], merge_gap: int = MERGE_GAP_FRAMES) -> list[range]:
    """Sorted, de-duplicated `indices` grouped into ranges to decode in one ffmpeg run each.

    A new range starts where the next wanted frame is more than `merge_gap` frames after the
    previous one, so a `merge_gap` as large as the video gives a single pass.
    """
    ordered = sorted(set(indices))
    if ordered and ordered[0] < 0:
        raise ValueError(f"frame index must not be negative, got {ordered[0]}")
    runs: list[range] = []
    run_start = 0
    for position in range(1, len(ordered) + 1):
        if position == len(ordered) or ordered[position] - ordered[position - 1] > merge_gap:
            runs.append(range(ordered[run_start], ordered[position - 1] + 1))
            run_start = position
    return runs


def iter_selected_frames(
    video: str | os.PathLike[str],
    indices: Iterable[int],
    info: MediaInfo | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """(index, BGR frame) for each distinct wanted frame of `video`, in ascending order.

    Nearby frames share one decoding run (see MERGE_GAP_FRAMES); containers that cannot seek
    exactly are read in a single pass, since each run would decode from the start again.
    MediaError if the video has fewer frames than an index asks for.
    """
    info = info or probe_media(video)
    wanted = sorted(set(indices))
    if not wanted:
        return
    if wanted[0] < 0 or wanted[-1] >= info.frame_count:
        raise MediaError(
            f"{video} has {info.frame_count} frames; cannot read frame "
            f"{wanted[0] if wanted[0] < 0 else wanted[-1]}"
        )
    merge_gap = MERGE_GAP_FRAMES
    if info.kind == "video" and not read_container_header(video).seeks_accurately:
        merge_gap = info.frame_count
    wanted_set = set(wanted)
    for run in frame_runs(wanted, merge_gap):
        for index, frame in zip(run, iter_frames(video, run.start, len(run), info), strict=True):
            if index in wanted_set:
                yield index, frame
