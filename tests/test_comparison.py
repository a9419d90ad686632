"""A/B comparison: identity similarity of swapped faces, the contact sheet and the HTML report."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from facefusion_ray.comparison import (
    ContactRow,
    SimilarityStats,
    build_contact_sheet,
    iter_selected_frames,
    measure_identity_similarity,
    sample_frame_indices,
    similarity_stats,
    source_embedding_for,
)
from facefusion_ray.comparison.before_after import GAP_PIXELS, write_before_after
from facefusion_ray.comparison.contact_sheet import header_height
from facefusion_ray.comparison.frames import frame_runs
from facefusion_ray.errors import MediaError, NoFaceError
from facefusion_ray.media import SegmentEncoder, read_image
from tests.media_factory import INDEXED_SIZE, frame_index, make_indexed_clip

CLIP_WIDTH, CLIP_HEIGHT = 320, 240
TOM_FRAMES = range(0, 4)
ASTRONAUT_FRAMES = range(4, 8)


@dataclass(frozen=True)
class TwoPeopleClip:
    """Frames 0-3 show Tom Hanks' photo, frames 4-7 the astronaut's, on a grey canvas."""

    path: Path
    tom_frame: np.ndarray
    astronaut_frame: np.ndarray
    tom_landmarks: np.ndarray
    astronaut_landmarks: np.ndarray


def on_canvas(photo: np.ndarray) -> np.ndarray:
    canvas = np.full((CLIP_HEIGHT, CLIP_WIDTH, 3), 110, dtype=np.uint8)
    canvas[20:220, 60:260] = cv2.resize(photo, (200, 200), interpolation=cv2.INTER_AREA)
    return canvas


@pytest.fixture(scope="module")
def two_people_clip(sample_media, detector, tmp_path_factory) -> TwoPeopleClip:
    tom = on_canvas(read_image(sample_media.source_tom_hanks))
    astronaut = on_canvas(read_image(sample_media.source_astronaut))
    path = tmp_path_factory.mktemp("comparison") / "two_people.mp4"
    with SegmentEncoder(path, CLIP_WIDTH, CLIP_HEIGHT, Fraction(25), quality=90) as encoder:
        for _ in TOM_FRAMES:
            encoder.write(tom)
        for _ in ASTRONAUT_FRAMES:
            encoder.write(astronaut)
    (tom_face,) = detector.detect(tom)
    (astronaut_face,) = detector.detect(astronaut)
    return TwoPeopleClip(path, tom, astronaut, tom_face.landmarks_5, astronaut_face.landmarks_5)


# --- identity similarity ---------------------------------------------------------------------


def test_a_face_is_close_to_its_own_source_and_far_from_another(
    two_people_clip, sample_media, detector, recognizer
) -> None:
    clip = two_people_clip
    tom = source_embedding_for(sample_media.source_tom_hanks, detector, recognizer)
    samples = {1: [clip.tom_landmarks], 5: [clip.astronaut_landmarks], 6: []}

    similarity = measure_identity_similarity(clip.path, samples, tom, recognizer)

    assert sorted(similarity) == [1, 5, 6]
    assert len(similarity[1]) == 1 and similarity[1][0] > 0.9
    assert len(similarity[5]) == 1 and similarity[5][0] < 0.4
    assert similarity[6] == []


def test_each_frame_is_measured_in_its_own_pixels(
    two_people_clip, sample_media, detector, recognizer
) -> None:
    """The astronaut's landmarks measured on a frame that shows her match her; the same
    landmarks on a frame of Tom Hanks do not, so the right frames were decoded."""
    clip = two_people_clip
    astronaut = source_embedding_for(sample_media.source_astronaut, detector, recognizer)
    landmarks = clip.astronaut_landmarks
    samples = {0: [landmarks], 3: [landmarks], 4: [landmarks], 7: [landmarks, landmarks]}

    similarity = measure_identity_similarity(clip.path, samples, astronaut * 3.0, recognizer)

    assert all(value < 0.4 for frame in (0, 3) for value in similarity[frame])
    assert all(value > 0.7 for frame in (4, 7) for value in similarity[frame])
    assert len(similarity[7]) == 2
    assert similarity[7][0] == pytest.approx(similarity[4][0], abs=0.02)


def test_a_sample_past_the_end_of_the_render_is_a_media_error(
    two_people_clip, sample_media, detector, recognizer
) -> None:
    tom = source_embedding_for(sample_media.source_tom_hanks, detector, recognizer)
    with pytest.raises(MediaError, match="has 8 frames"):
        measure_identity_similarity(
            two_people_clip.path, {2: [], 8: [two_people_clip.tom_landmarks]}, tom, recognizer
        )


def test_the_source_embedding_is_unit_length_and_needs_a_face(
    sample_media, detector, recognizer, tmp_path
) -> None:
    embedding = source_embedding_for(sample_media.source_astronaut, detector, recognizer)
    assert embedding.shape == (128,)
    assert float(np.linalg.norm(embedding)) == pytest.approx(1.0, abs=1e-5)

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 90, dtype=np.uint8))
    with pytest.raises(NoFaceError, match=r"blank\.png"):
        source_embedding_for(blank, detector, recognizer)


def test_similarity_stats_summarise_every_measured_face() -> None:
    per_frame = {10: [0.9, 0.7], 20: [], 30: [0.5]}

    assert similarity_stats(per_frame) == SimilarityStats(
        frames_swapped=2, faces_measured=3, mean=pytest.approx(0.7), minimum=0.5
    )
    assert similarity_stats(per_frame, frames_swapped=40).frames_swapped == 40
    assert similarity_stats({3: []}, frames_swapped=5) == SimilarityStats(5, 0, None, None)


# --- choosing and decoding frames ------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame_count", "count", "expected"),
    [
        (300, 6, [25, 75, 125, 175, 225, 275]),
        (10, 1, [5]),
        (1, 6, [0]),
        (4, 6, [0, 1, 2, 3]),
        (7, 7, [0, 1, 2, 3, 4, 5, 6]),
        (0, 6, []),
        (9, 0, []),
    ],
)
def test_sample_frame_indices(frame_count: int, count: int, expected: list[int]) -> None:
    assert sample_frame_indices(frame_count, count) == expected


def test_sampled_frames_are_distinct_increasing_and_inside_the_video() -> None:
    for frame_count in range(1, 80):
        for count in range(1, 12):
            indices = sample_frame_indices(frame_count, count)
            assert len(indices) == min(count, frame_count)
            assert indices == sorted(set(indices))
            assert indices[0] >= 0 and indices[-1] < frame_count
    with pytest.raises(ValueError):
        sample_frame_indices(-1)


def test_nearby_frames_share_a_decoding_run() -> None:
    assert frame_runs([500, 0, 2, 101, 100, 2], merge_gap=64) == [
        range(0, 3),
        range(100, 102),
        range(500, 501),
    ]
    assert frame_runs([0, 64, 129], merge_gap=64) == [range(0, 65), range(129, 130)]
    assert frame_runs([]) == []


def test_only_the_wanted_frames_come_back_in_order(tmp_path: Path) -> None:
    clip = make_indexed_clip(tmp_path / "indexed.mp4", frames=120)
    wanted = [91, 3, 5, 90, 3, 119]

    decoded = [(index, frame_index(frame)) for index, frame in iter_selected_frames(clip, wanted)]

    assert decoded == [(3, 3), (5, 5), (90, 90), (91, 91), (119, 119)]
    with pytest.raises(MediaError, match="has 120 frames"):
        list(iter_selected_frames(clip, [5, 120]))


# --- contact sheet ---------------------------------------------------------------------------


def cell(sheet: np.ndarray, row: int, column: int, width: int, height: int) -> np.ndarray:
    top = header_height(height) + row * height
    return sheet[top : top + height, column * width : (column + 1) * width]


def test_contact_sheet_shows_each_source_then_its_sampled_frames(
    two_people_clip, sample_media, tmp_path
) -> None:
    clip = two_people_clip
    rows = [
        ContactRow("tom", sample_media.source_tom_hanks, clip.path),
        ContactRow("astronaut <failed>", sample_media.source_astronaut, None),
    ]
    path = tmp_path / "sheet" / "contact.png"
    thumb_height = 90
    thumb_width = round(thumb_height * CLIP_WIDTH / CLIP_HEIGHT)

    build_contact_sheet(rows, [1, 6], path, thumb_height=thumb_height)

    sheet = read_image(path)
    assert sheet.shape == (header_height(thumb_height) + 2 * thumb_height, 3 * thumb_width, 3)
    assert [p.name for p in path.parent.iterdir()] == ["contact.png"]  # no partial file left

    source_thumbnail = cell(sheet, 0, 0, thumb_width, thumb_height)
    assert source_thumbnail.std() > 20  # the photo, not an empty cell

    def interior(image: np.ndarray) -> np.ndarray:
        return image[4:-4, 4:-4].astype(np.int16)

    expected = {
        1: cv2.resize(clip.tom_frame, (thumb_width, thumb_height), interpolation=cv2.INTER_AREA),
        2: cv2.resize(
            clip.astronaut_frame, (thumb_width, thumb_height), interpolation=cv2.INTER_AREA
        ),
    }
    for column, thumbnail in expected.items():
        shown = interior(cell(sheet, 0, column, thumb_width, thumb_height))
        assert np.abs(shown - interior(thumbnail)).mean() < 6
    # The failed render's frames are flat placeholders, apart from their text.
    placeholder = cell(sheet, 1, 1, thumb_width, thumb_height)
    assert np.median(placeholder) == 64


def test_contact_sheet_needs_rows(tmp_path: Path, sample_media) -> None:
    with pytest.raises(ValueError):
        build_contact_sheet([], [0], tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


# --- before / after picture ------------------------------------------------------------------


def test_the_before_after_picture_shows_the_same_frame_of_target_then_output(
    tmp_path: Path,
) -> None:
    target = make_indexed_clip(tmp_path / "target.mp4", frames=30)
    output = make_indexed_clip(tmp_path / "output.mp4", frames=30, extra_filter="negate")
    height = INDEXED_SIZE[1]  # the clip's own size: no scaling blurs the index blocks

    picture = read_image(write_before_after(target, output, 17, tmp_path / "ba.jpg", height))

    panel_width = (picture.shape[1] - GAP_PIXELS) // 2
    before, after = picture[:, :panel_width], picture[:, panel_width + GAP_PIXELS :]
    assert picture.shape[0] == height
    assert frame_index(before) == 17
    assert frame_index(255 - after) == 17
    with pytest.raises(MediaError, match="has 30 frames"):
        write_before_after(target, output, 30, tmp_path / "late.jpg", height)
