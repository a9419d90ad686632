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


def plan_chunks(frame_count: int, chunk_frames: int) -> list[Chunk]:
    """Consecutive ranges of at most `chunk_frames` frames covering [0, frame_count)."""
    if chunk_frames < 1:
        raise ValueError("chunk_frames must be at least 1")
    return [
        Chunk(index, start, min(chunk_frames, frame_count - start))
        for index, start in enumerate(range(0, frame_count, chunk_frames))
    ]
