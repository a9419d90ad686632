"""The A/B review: what the renders measure per frame, the figures that rank the sources, the
face sheet and the page (its browser behaviour is in test_ab_review_browser.py)."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from facefusion_ray.analysis.face import Face
from facefusion_ray.comparison.face_sheet import FaceSheetRow, build_face_sheet
from facefusion_ray.comparison.html_report import AbEntry, AbPage, write_ab_report
from facefusion_ray.comparison.review_figures import frame_ranges, review_figures
from facefusion_ray.media import read_image
from facefusion_ray.pipeline.review_probe import (
    CROP_MARGIN,
    CROP_SIZE,
    ReviewFrames,
    ReviewProbe,
    decode_jpeg,
    merge_reviews,
)

FRAME_SIZE = (240, 320)  # height, width


def face_at(x: float, y: float, size: float) -> Face:
    """A face box and plausible 5 landmarks (eyes, nose, mouth corners) at (x, y)."""
    half = size / 2
    landmarks = np.array(
        [
            [x - 0.2 * size, y - 0.1 * size],
            [x + 0.2 * size, y - 0.1 * size],
            [x, y + 0.05 * size],
            [x - 0.15 * size, y + 0.25 * size],
            [x + 0.15 * size, y + 0.25 * size],
        ],
        dtype=np.float32,
    )
    bbox = np.array([x - half, y - half, x + half, y + half], dtype=np.float32)
    return Face(bbox=bbox, score=0.9, landmarks_5=landmarks)


def textured_frame(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (FRAME_SIZE[0] // 8, FRAME_SIZE[1] // 8, 3), dtype=np.uint8)
    return cv2.resize(small, (FRAME_SIZE[1], FRAME_SIZE[0]), interpolation=cv2.INTER_CUBIC)


def paste(frame: np.ndarray, face: Face, patch_seed: int) -> None:
    """A stand-in swap: the face box gets a texture chosen by `patch_seed`."""
    x1, y1, x2, y2 = (round(float(value)) for value in face.bbox)
    rng = np.random.default_rng(patch_seed)
    small = rng.integers(0, 255, (4, 4, 3), dtype=np.uint8)
    frame[y1:y2, x1:x2] = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_CUBIC)


def run_probe(frames: int, patch_seed_of, faces_of, sheet=(), identity=()) -> ReviewProbe:
    probe = ReviewProbe(ReviewFrames(tuple(sheet), tuple(identity)), None)
    background = textured_frame()
    for index in range(frames):
        frame = background.copy()
        faces = faces_of(index)
        probe.before_swap(index, frame, faces)
        swapped = [face for face in faces if patch_seed_of(index) is not None]
        for face in swapped:
            paste(frame, face, patch_seed_of(index))
        probe.after_swap(index, frame, len(faces), swapped)
    return probe


def test_a_swap_that_changes_every_frame_flickers_and_a_steady_one_does_not() -> None:
    faces = [face_at(100, 120, 60), face_at(220, 120, 60)]
    steady = run_probe(6, lambda index: 7, lambda index: faces)
    flickering = run_probe(6, lambda index: index, lambda index: faces)

    steady_figures = review_figures({}, steady.result.flicker, steady.result.missed)
    flicker_figures = review_figures({}, flickering.result.flicker, flickering.result.missed)
    # Frames 1-5 each pair with the frame before (frame 0 has none).
    assert sorted(steady.result.flicker) == [1, 2, 3, 4, 5]
    assert steady_figures.flicker == pytest.approx(0.0, abs=0.01)
    assert flicker_figures.flicker > 10
    assert flicker_figures.flicker_added > 10
    assert flicker_figures.flicker_worst_frame in range(1, 6)


def test_the_footage_s_own_motion_is_not_counted_as_added_flicker() -> None:
    """A still pasted face on a moving background: the target changes, the swap adds nothing."""
    probe = ReviewProbe(ReviewFrames((), ()), None)
    face = face_at(160, 120, 80)
    for index in range(5):
        frame = textured_frame(seed=index)  # the whole picture changes every frame
        probe.before_swap(index, frame, [face])
        paste(frame, face, 3)
        probe.after_swap(index, frame, 1, [face])
    figures = review_figures({}, probe.result.flicker, [])
    assert figures.flicker == pytest.approx(0.0, abs=0.01)
    assert figures.flicker_added < -10  # steadier than the footage


def test_frames_with_faces_and_no_swap_are_missed_and_listed_as_ranges() -> None:
    faces = [face_at(160, 120, 60)]
    probe = run_probe(
        10,
        lambda index: None if index in (2, 3, 4, 8) else 1,
        lambda index: [] if index == 6 else faces,
    )
    assert probe.result.missed == [2, 3, 4, 8]  # frame 6 had no face to swap
    figures = review_figures({}, {}, probe.result.missed)
    assert figures.frames_missed == 4
    assert figures.missed_ranges == ((2, 4), (8, 8))
    assert frame_ranges([5, 1, 2, 2, 9]) == [(1, 2), (5, 5), (9, 9)]


def test_sheet_moments_keep_each_swapped_face_up_close_beside_the_original() -> None:
    faces = [face_at(220, 120, 40), face_at(80, 120, 40)]
    probe = run_probe(4, lambda index: 5, lambda index: faces, sheet=(1, 3))
    assert sorted(probe.result.shots) == [1, 3]
    assert sorted(probe.result.thumbnails) == [1, 3]
    shots = probe.result.shots[1]
    assert [shot.centre[0] for shot in shots] == [80, 220]  # left to right
    for shot in shots:
        original, swapped = decode_jpeg(shot.original), decode_jpeg(shot.swapped)
        assert original.shape == swapped.shape == (CROP_SIZE, CROP_SIZE, 3)
        assert CROP_SIZE / CROP_MARGIN >= 160  # the face's box spans this much of the crop
        assert np.abs(original.astype(int) - swapped.astype(int)).mean() > 10


def test_identity_is_measured_one_face_a_frame_taking_turns(
    detector, recognizer, sample_media
) -> None:
    from facefusion_ray.pipeline.review_probe import source_embedding

    photo = read_image(sample_media.group_photo)
    faces = detector.detect(photo)
    assert len(faces) >= 3
    ordered = sorted(faces, key=lambda face: float(face.bbox[0]))
    # Each face in turn as the "source": its turn measures 1.0.
    unit = source_embedding([photo], detector, recognizer)
    assert unit is not None and abs(float(np.linalg.norm(unit)) - 1) < 1e-5
    first = recognizer.embed(photo, ordered[0].landmarks_5)[1]
    probe = ReviewProbe(ReviewFrames((), (0, 1, 2, 3), first), recognizer)
    for index in range(4):
        probe.before_swap(index, photo, faces)
        probe.after_swap(index, photo, len(faces), faces)
    identity = probe.result.identity
    assert sorted(identity) == [0, 1, 2, 3] and all(
        len(values) == 1 for values in identity.values()
    )
    assert identity[0][0] == pytest.approx(1.0, abs=1e-4)  # the leftmost face itself
    assert identity[1][0] < 0.6 and identity[2][0] < 0.6  # the next people
    merged = merge_reviews([probe.result, probe.result])
    figures = review_figures(merged.identity, merged.flicker, merged.missed)
    assert figures.identity_faces == 4
    assert figures.identity_worst == min(values[0] for values in identity.values())
    assert figures.identity_worst_frame in (1, 2, 3)


def test_face_sheet_has_a_block_per_person_with_the_target_then_each_source(
    sample_media, tmp_path
) -> None:
    crop = np.full((CROP_SIZE, CROP_SIZE, 3), 200, dtype=np.uint8)
    target = {10: [crop, crop], 30: [crop]}
    rows = [
        FaceSheetRow("tom", sample_media.source_tom_hanks, {10: [crop, crop], 30: [crop]}),
        FaceSheetRow("failed", sample_media.source_astronaut, None),
    ]
    path = tmp_path / "face_sheet.jpg"
    layout = build_face_sheet(target, rows, [10, 30], path)
    sheet = read_image(path)
    assert layout.cell == CROP_SIZE
    assert sheet.shape == (layout.header + 2 * 3 * CROP_SIZE, 3 * CROP_SIZE, 3)
    drawn = [(row.label, row.person, row.faces_at) for row in layout.rows]
    assert drawn == [
        ("target", 0, (0, 1)),
        ("tom", 0, (0, 1)),
        ("failed", 0, ()),
        ("target", 1, (0,)),
        ("tom", 1, (0,)),
        ("failed", 1, ()),
    ]
    # A face cell shows the crop at full size.
    face_cell = sheet[
        layout.header + 10 : layout.header + CROP_SIZE - 10, CROP_SIZE + 10 : 2 * CROP_SIZE - 10
    ]
    assert abs(float(face_cell.mean()) - 200) < 4


class PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))


def test_the_page_ranks_plays_in_sync_and_needs_no_network(tmp_path: Path) -> None:
    out = tmp_path / "ab"
    malicious = "<script>alert('x')</script>.jpg"
    figures = review_figures({3: [0.5], 9: [0.25]}, {4: (6.0, 2.0), 5: (3.0, 2.5)}, [7, 8])
    entries = [
        AbEntry(malicious, out / "tom hanks.mp4", 40, 38, 12.34, figures),
        AbEntry("astronaut.png", None, 40, 0, 0.5, None, "error: <b>no face</b> & more"),
        AbEntry("group.png", out / "group.mp4", 40, 40, 3.0, None),
    ]
    page = AbPage(
        "<img src=x onerror=alert(1)>.mp4", 25.0, 40, entries,
        out / "face_sheet.jpg", out / "contact_sheet.png", {malicious: {3: [0.5], 9: [0.25]}},
    )  # fmt: skip
    report = out / "report.html"
    write_ab_report(report, page)

    text = report.read_text(encoding="utf-8")
    parser = PageParser()
    parser.feed(text)
    tags = [tag for tag, _ in parser.tags]
    assert tags.count("img") == 2  # the two sheets; the target's name stays text
    assert tags.count("script") == 2  # the page's data and its player, nothing injected
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;.jpg" in text
    assert "error: &lt;b&gt;no face&lt;/b&gt; &amp; more" in text
    # Self-contained: every link is relative, nothing is fetched from elsewhere.
    links = [attrs.get(name, "") for _, attrs in parser.tags for name in ("href", "src")]
    assert all(link and ":" not in link and not link.startswith("/") for link in links if link)
    assert "fetch(" not in text and "XMLHttpRequest" not in text and "@import" not in text
    videos = [attrs for tag, attrs in parser.tags if tag == "video"]
    assert [video["src"] for video in videos] == [
        "tom%20hanks.mp4", "group.mp4", "tom%20hanks.mp4", "group.mp4",
    ]  # fmt: skip
    assert all("ab-sync" in video["class"] for video in videos)
    # The ranking: sortable, with the figures and links to their frames.
    cells = [attrs for tag, attrs in parser.tags if tag == "td"]
    assert len(cells) == 3 * 11
    assert cells[2]["data-sort"] == "0.375000" and cells[3]["data-sort"] == "0.250000"
    frame_links = [attrs["data-frame"] for tag, attrs in parser.tags if "data-frame" in attrs]
    assert frame_links == ["9", "4", "7"]
    assert all(value in text for value in ("0.375", "0.250", "2.25", "4.50", "38", "12.3"))
    assert [p.name for p in out.iterdir()] == ["report.html"]
