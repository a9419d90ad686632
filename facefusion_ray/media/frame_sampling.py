"""Which frames of a video to look at when not every frame is needed."""


def sample_frame_indices(frame_count: int, count: int = 6) -> list[int]:
    """`count` distinct frame indices spread evenly over the video, at the centres of equal
    spans (so neither the first nor the last frame, often a fade, unless the video is short).

    Every frame when the video has no more than `count`; [] for an empty video.
    """
    if frame_count < 0 or count < 0:
        raise ValueError(f"frame_count and count must not be negative: {frame_count}, {count}")
    if count >= frame_count:
        return list(range(frame_count))
    # Centres of `count` equal spans; they are at least one frame apart, so never collide.
    return [(2 * slot + 1) * frame_count // (2 * count) for slot in range(count)]
