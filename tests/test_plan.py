import pytest

from facefusion_ray.pipeline.chunks import plan_chunks


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
