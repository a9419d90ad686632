"""The sample media are built by our code from pinned photos and hold real faces."""

from facefusion_ray.media import iter_frames, probe_media
from facefusion_ray.media.images import read_image


def test_sample_video_is_ten_seconds_of_720p_with_audio(sample_media) -> None:
    info = probe_media(sample_media.target_video)
    assert (info.width, info.height) == (1280, 720)
    assert info.to_json_dict()["fps"] == "30/1"
    assert info.frame_count == 300
    assert info.has_audio
    # x264 starts a group of pictures where the camera cuts to the astronaut: the chunk
    # planner's example of a long group of pictures (benchmarks/README.md).
    assert info.keyframes == (0, 210)


def test_sample_video_shows_the_group_then_the_astronaut(sample_media, detector) -> None:
    info = probe_media(sample_media.target_video)
    first = next(iter_frames(sample_media.target_video, 0, 1, info))
    last = next(iter_frames(sample_media.target_video, 299, 1, info))
    assert len(detector.detect(first)) == 6
    assert len(detector.detect(last)) == 1


def test_each_source_image_has_exactly_one_face(sample_media, detector) -> None:
    for path in (sample_media.source_tom_hanks, sample_media.source_astronaut):
        assert len(detector.detect(read_image(path))) == 1, path
