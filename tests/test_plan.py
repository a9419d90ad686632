import random
from collections.abc import Sequence

import pytest

from facefusion_ray.pipeline.chunks import DECODE_COST, Chunk, plan_chunks


@pytest.mark.parametrize("frame_count", [1, 7, 64, 300, 301])
@pytest.mark.parametrize("chunk_frames", [1, 7, 64, 1000])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_chunks_cover_every_frame_once_in_order(
    frame_count: int, chunk_frames: int, workers: int
) -> None:
    chunks = plan_chunks(frame_count, chunk_frames, workers)
    frames = [frame for chunk in chunks for frame in range(chunk.start, chunk.end)]
    assert frames == list(range(frame_count))
    assert all(1 <= chunk.count <= chunk_frames for chunk in chunks)
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))


def test_zero_chunk_size_is_refused() -> None:
    with pytest.raises(ValueError):
        plan_chunks(10, 0)


def test_chunks_are_balanced_over_the_workers() -> None:
    chunks = plan_chunks(300, 64, workers=2)
    assert [chunk.count for chunk in chunks] == [50] * 6
    assert len(plan_chunks(10_000, 64, workers=2)) % 2 == 0


def test_one_worker_keeps_the_requested_chunk_size() -> None:
    assert [chunk.count for chunk in plan_chunks(150, 64)] == [50, 50, 50]
    assert [chunk.count for chunk in plan_chunks(128, 64)] == [64, 64]


def test_a_catalog_job_does_not_split_its_short_videos_further() -> None:
    from facefusion_ray.engine.render_plan import chunk_balance

    # One 24-frame video on 8 workers: spread over all of them.
    assert len(plan_chunks(24, 64, chunk_balance(1, 8))) == 8
    # 2,400 such renders on 8 workers keep them busy: each clip is one chunk, not 8 of 3 frames.
    assert len(plan_chunks(24, 64, chunk_balance(2400, 8))) == 1
    assert (chunk_balance(7, 8), chunk_balance(8, 8)) == (8, 1)


# The 10 s sample video: 300 frames, keyframes at 0 and 210 only.
SAMPLE_KEYFRAMES = (0, 210)


def preroll(start: int, keyframes: Sequence[int]) -> int:
    """Frames decoded and dropped before `start`: those since the keyframe at or before it."""
    return start - max(frame for frame in (0, *keyframes) if frame <= start)


def costs(chunks: list[Chunk], keyframes: Sequence[int]) -> list[float]:
    return [chunk.count + DECODE_COST * preroll(chunk.start, keyframes) for chunk in chunks]


def test_boundaries_move_onto_keyframes_without_a_costlier_chunk() -> None:
    even = plan_chunks(300, 64, workers=2)
    planned = plan_chunks(300, 64, workers=2, keyframes=SAMPLE_KEYFRAMES)
    assert len(planned) == len(even) == 6
    assert 210 in [chunk.start for chunk in planned]
    assert max(costs(planned, SAMPLE_KEYFRAMES)) <= max(costs(even, SAMPLE_KEYFRAMES))
    even_preroll = sum(preroll(chunk.start, SAMPLE_KEYFRAMES) for chunk in even)
    planned_preroll = sum(preroll(chunk.start, SAMPLE_KEYFRAMES) for chunk in planned)
    assert (even_preroll, planned_preroll) == (540, 304)
    # In the long first group of pictures, a chunk that starts deeper into it is shorter.
    first_group = [chunk.count for chunk in planned if chunk.start > 0 and chunk.end <= 210]
    assert first_group == sorted(first_group, reverse=True)


def test_keyframe_plans_are_deterministic() -> None:
    keyframes = (0, 37, 90, 91, 200, 260)
    plans = {tuple(plan_chunks(300, 32, 3, keyframes)) for _ in range(3)}
    assert len(plans) == 1
    assert plan_chunks(300, 32, 3, list(reversed(keyframes))) == plan_chunks(300, 32, 3, keyframes)


@pytest.mark.parametrize("keyframes", [(), (0,), tuple(range(300))])
def test_without_keyframes_to_plan_around_the_plan_is_the_even_one(
    keyframes: tuple[int, ...],
) -> None:
    assert plan_chunks(300, 64, 2, keyframes) == plan_chunks(300, 64, 2)
    assert plan_chunks(301, 7, 3, keyframes) == plan_chunks(301, 7, 3)


@pytest.mark.parametrize("seed", range(40))
def test_keyframe_plans_cover_every_frame_and_never_cost_more(seed: int) -> None:
    chooser = random.Random(seed)
    frame_count = chooser.randint(1, 2000)
    chunk_frames, workers = chooser.choice([1, 7, 30, 64, 250]), chooser.randint(1, 4)
    group = chooser.choice([2, 12, 60, 250, 600])
    keyframes = sorted(
        {0, *chooser.sample(range(frame_count), min(frame_count, frame_count // group + 1))}
    )
    even = plan_chunks(frame_count, chunk_frames, workers)
    planned = plan_chunks(frame_count, chunk_frames, workers, keyframes)
    frames = [frame for chunk in planned for frame in range(chunk.start, chunk.end)]
    assert frames == list(range(frame_count))
    assert [chunk.index for chunk in planned] == list(range(len(even)))
    assert all(chunk.count >= 1 for chunk in planned)
    assert max(costs(planned, keyframes)) <= max(costs(even, keyframes)) + 1e-6
    planned_preroll = sum(preroll(chunk.start, keyframes) for chunk in planned)
    assert planned_preroll <= sum(preroll(chunk.start, keyframes) for chunk in even)
