"""Splitting a video into frame ranges, the unit of scheduling."""

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

# What decoding a frame costs against rendering it (decode, analyse, swap, encode) with the
# embedded models. The benchmarks' sequential runs of the 10 s sample (benchmarks/README.md,
# issue 19 CPU table) spent 1.1 s of CPU decoding 300 frames against 21.3 s (cold) and
# 14.2 s (warm cache) in the frame loop and the encoder: 1/19 to 1/13, rounded up to 1/10 to
# count what a skipped frame also costs a chunk (demuxing, for remote targets its bytes read).
DECODE_COST = 0.1
# Costs count in tenths of a frame: a hundredth absorbs floating-point sums.
_COST_RESOLUTION = 0.01
# A moved boundary spreads at most this many chunks before it again, so planning stays linear
# in the video's length.
_SPREAD_CHUNKS = 16


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int
    count: int

    @property
    def end(self) -> int:
        return self.start + self.count


def plan_chunks(
    frame_count: int, chunk_frames: int, workers: int = 1, keyframes: Sequence[int] = ()
) -> list[Chunk]:
    """Consecutive ranges covering [0, frame_count), about `chunk_frames` frames each.

    The number of chunks is rounded up to a multiple of `workers` and the frames are spread
    evenly over them, so on a short video no worker idles while another renders a last,
    extra chunk (5 chunks of 64 on 2 workers would leave one worker idle 40% of the time).

    A chunk that starts between keyframes first decodes, and throws away, the frames from the
    keyframe before its start (its pre-roll). Given the video's `keyframes` (display indices,
    as `MediaInfo.keyframes`), boundaries move onto keyframes where the plan's costliest
    chunk, counting pre-roll at `DECODE_COST` a frame, costs no more than in the even split;
    then a chunk may exceed `chunk_frames`. The plan depends only on the arguments, so the
    same command plans the same chunks (and a re-run finds its finished segments).
    """
    if chunk_frames < 1:
        raise ValueError("chunk_frames must be at least 1")
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if frame_count <= 0:
        return []
    needed = -(-frame_count // chunk_frames)
    chunk_total = min(frame_count, -(-needed // workers) * workers)
    base, remainder = divmod(frame_count, chunk_total)
    bounds = [0]
    for index in range(chunk_total):
        bounds.append(bounds[-1] + base + (1 if index < remainder else 0))
    starts = sorted({frame for frame in keyframes if 0 < frame < frame_count})
    if starts:
        bounds = _SeekCosts(starts).snapped(bounds)
    return [
        Chunk(index, start, end - start)
        for index, (start, end) in enumerate(itertools.pairwise(bounds))
    ]


class _SeekCosts:
    """The cost model: a chunk's frames plus its pre-roll at `DECODE_COST` a frame."""

    def __init__(self, keyframes: list[int]) -> None:
        self._keyframes = [0, *keyframes]

    def preroll(self, start: int) -> int:
        return start - self._keyframes[bisect.bisect_right(self._keyframes, start) - 1]

    def cost(self, start: int, end: int) -> float:
        return end - start + DECODE_COST * self.preroll(start)

    def largest(self, bounds: list[int]) -> float:
        return max(self.cost(start, end) for start, end in itertools.pairwise(bounds))

    def snapped(self, bounds: list[int]) -> list[int]:
        """`bounds` with boundaries moved onto keyframes, left to right. A move respreads the
        chunks before it since the last move (at most `_SPREAD_CHUNKS`) and is kept when that
        lowers their pre-roll and no chunk costs more than the even split's costliest. The
        chunks after the last move are respread the same way up to the video's end."""
        ceiling = self.largest(bounds) + _COST_RESOLUTION
        bounds = list(bounds)
        anchor = 0  # the index of the last boundary on a keyframe (or the video's start)
        for index in range(1, len(bounds) - 1):
            first = max(anchor, index - _SPREAD_CHUNKS)
            for keyframe in self._candidates(bounds[index - 1], bounds[index], bounds[index + 1]):
                if self.cost(keyframe, bounds[index + 1]) <= ceiling and self._respread(
                    bounds, first, index, keyframe, ceiling
                ):
                    anchor = index
                    break
        last = len(bounds) - 1
        self._respread(bounds, max(anchor, last - _SPREAD_CHUNKS), last, bounds[last], ceiling)
        return bounds

    def _respread(
        self, bounds: list[int], first: int, index: int, frame: int, ceiling: float
    ) -> bool:
        """Move boundary `index` to `frame` and respread the chunks from boundary `first`,
        in place, if that lowers their pre-roll within `ceiling`; whether it did."""
        starts = self._latest_first(bounds[first], frame, index - first, ceiling)
        if starts is None:
            return False
        before = sum(self.preroll(start) for start in bounds[first + 1 : index + 1])
        if sum(self.preroll(start) for start in [*starts[1:], frame]) >= before:
            return False
        bounds[first:index] = starts
        bounds[index] = frame
        return True

    def _candidates(self, previous: int, boundary: int, following: int) -> list[int]:
        """The keyframes nearest `boundary` on either side, strictly between its neighbours,
        nearer first (the earlier on a tie)."""
        after = bisect.bisect_left(self._keyframes, boundary)
        near = self._keyframes[max(after - 1, 0) : after + 1]
        inside = [frame for frame in near if previous < frame < following]
        return sorted(inside, key=lambda frame: (abs(frame - boundary), frame))

    def _latest_first(self, start: int, end: int, chunks: int, ceiling: float) -> list[int] | None:
        """Starts of `chunks` chunks covering [start, end), each costing at most `ceiling`,
        filled from the end: each chunk starts as early as its cost allows, which within a
        group of pictures is also the least pre-roll. None when they cannot fit."""
        starts = [end]
        for earlier in range(chunks - 1, 0, -1):
            low, high = start + earlier, starts[-1] - 1  # every earlier chunk keeps a frame
            if low > high or self.cost(high, starts[-1]) > ceiling:
                return None
            # A chunk's cost only falls as its start moves later: bisect for the earliest.
            while low < high:
                middle = (low + high) // 2
                if self.cost(middle, starts[-1]) <= ceiling:
                    high = middle
                else:
                    low = middle + 1
            starts.append(low)
        if self.cost(start, starts[-1]) > ceiling:
            return None
        return [start, *reversed(starts[1:])]
