import pytest

from facefusion_ray.engine.plan import plan_chunks


@pytest.mark.parametrize("frame_count", [1, 7, 64, 300, 301])
@pytest.mark.parametrize("chunk_frames", [1, 7, 64, 1000])
def test_chunks_cover_every_frame_once_in_order(frame_count: int, chunk_frames: int) -> None:
    chunks = plan_chunks(frame_count, chunk_frames)
    frames = [frame for chunk in chunks for frame in range(chunk.start, chunk.end)]
    assert frames == list(range(frame_count))
    assert all(1 <= chunk.count <= chunk_frames for chunk in chunks)
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))


def test_zero_chunk_size_is_refused() -> None:
    with pytest.raises(ValueError):
        plan_chunks(10, 0)
