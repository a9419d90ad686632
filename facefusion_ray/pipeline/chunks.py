"""Splitting a video into frame ranges, the unit of scheduling."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int
    count: int

    @property
    def end(self) -> int:
        return self.start + self.count


def plan_chunks(frame_count: int, chunk_frames: int, workers: int = 1) -> list[Chunk]:
    """Consecutive ranges of at most `chunk_frames` frames covering [0, frame_count).

    The number of chunks is rounded up to a multiple of `workers` and the frames are spread
    evenly over them, so on a short video no worker idles while another renders a last,
    extra chunk (5 chunks of 64 on 2 workers would leave one worker idle 40% of the time).
    The plan depends only on the three numbers, so the same command plans the same chunks.
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
    chunks: list[Chunk] = []
    start = 0
    for index in range(chunk_total):
        count = base + (1 if index < remainder else 0)
        chunks.append(Chunk(index, start, count))
        start += count
    return chunks
