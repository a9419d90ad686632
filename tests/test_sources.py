"""Source images become one identity; a photo with several faces uses the largest."""

import logging

import cv2
import numpy as np
import pytest

from facefusion_ray.analysis.select import largest_face
from facefusion_ray.errors import NoFaceError
from facefusion_ray.media.images import read_image
from facefusion_ray.pipeline.sources import prepare_source_identity
from facefusion_ray.processors.classic_swap import align_source


def test_a_source_with_two_faces_uses_the_largest_and_says_so(
    sample_media, detector, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    big = cv2.resize(read_image(sample_media.source_tom_hanks), (300, 300))
    small = cv2.resize(read_image(sample_media.source_astronaut), (150, 150))
    canvas = np.full((320, 480, 3), 127, dtype=np.uint8)
    canvas[10:310, 10:310] = big
    canvas[85:235, 320:470] = small
    path = tmp_path / "two_faces.png"
    cv2.imwrite(str(path), canvas)

    with caplog.at_level(logging.WARNING):
        identity = prepare_source_identity([path], detector)

    assert "2 faces; using the largest" in caplog.text
    faces = detector.detect(canvas)
    assert len(faces) == 2
    expected = align_source(canvas, largest_face(faces))
    assert identity.aligned is not None
    assert np.array_equal(identity.aligned.crop, expected.crop)
    assert largest_face(faces).bbox[0] < 310  # the big face is the one on the left


def test_every_source_must_show_a_face(sample_media, detector, tmp_path) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 90, dtype=np.uint8))
    with pytest.raises(NoFaceError, match=r"blank\.png"):
        prepare_source_identity([sample_media.source_tom_hanks, blank], detector)


class CountingEmbedder:
    def __init__(self) -> None:
        self.calls = 0

    def embed(self, frame: np.ndarray, landmarks_5: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        raw = np.full(4, float(self.calls), dtype=np.float32)
        return raw, raw / np.linalg.norm(raw)


def test_several_sources_are_averaged_into_one_embedding(sample_media, detector) -> None:
    embedder = CountingEmbedder()
    sources = [sample_media.source_tom_hanks, sample_media.source_astronaut]
    identity = prepare_source_identity(sources, detector, embedder)
    assert embedder.calls == 2
    assert identity.embedding is not None
    assert np.allclose(identity.embedding, np.full(4, 1.5))
    assert identity.aligned is None
