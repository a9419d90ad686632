"""The A/B review end to end: `ab` with four sources on the sample video, its face sheet, and
its page in a real headless Chromium (tests marked `browser`, skipped without Chromium).

Screenshots are written under each test's tmp_path (printed with -s; never committed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from facefusion_ray.comparison.html_report import AbEntry, AbPage, write_ab_report
from facefusion_ray.engine.ab import AbResult, run_ab
from facefusion_ray.engine.driver import job_options_for
from facefusion_ray.engine.job_report import RENDERED, UP_TO_DATE
from facefusion_ray.media import read_image
from facefusion_ray.settings import SwapSettings
from tests.chromium import MISSING_REASON, Chromium, chromium_executable, headless_chromium
from tests.media_factory import make_indexed_clip

FACE_MIN = 160
INDEXED_FPS = 25
INDEXED_FRAMES = 50
browser = pytest.mark.browser

# Injected into the page: the frame each player shows, and waiting for seeks to land.
PAGE_HELPERS = """
window.abTest = {
  all: () => Array.from(document.querySelectorAll('video.ab-sync')),
  videos: () => abTest.all().filter((v) => !v.error),
  frames: () => abTest.videos().map((v) => abReview.frameOf(v.currentTime)),
  settle: async () => {
    await Promise.all(abTest.videos().map((v) => v.seeking
      ? new Promise((done) => v.addEventListener('seeked', done, { once: true }))
      : null));
    await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  },
  scrubTo: async (frame) => {
    const scrub = document.getElementById('ab-scrub');
    scrub.value = String(frame);
    scrub.dispatchEvent(new Event('input', { bubbles: true }));
    await abTest.settle();
    return abTest.frames();
  },
  // The number make_indexed_clip drew into the frame on screen: 8 blocks of 20 px.
  shownIndex: (video) => {
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth; canvas.height = video.videoHeight;
    const context = canvas.getContext('2d');
    context.drawImage(video, 0, 0);
    const row = context.getImageData(0, canvas.height >> 1, canvas.width, 1).data;
    let index = 0;
    for (let bit = 0; bit < 8; bit++) if (row[(bit * 20 + 10) * 4] > 128) index |= 1 << bit;
    return index;
  },
  loaded: () => abTest.all().every((v) => v.readyState >= 2 || v.error),
  h264: () => document.createElement('video').canPlayType('video/mp4; codecs="avc1.640028"'),
};
true
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    executable = chromium_executable()
    if executable is None:
        pytest.skip(MISSING_REASON)
    return executable


@dataclass(frozen=True)
class AbInputs:
    target: str
    sources: list[str]
    folder: Path

    def run(self) -> AbResult:
        settings = SwapSettings(
            chunk_frames=10, workers=2, analysis_cache=str(self.folder / "cache")
        )
        options = job_options_for(
            settings, show_progress=False, work_store=str(self.folder / "work")
        )
        return run_ab(self.target, self.sources, self.folder / "ab", settings, options)


@pytest.fixture(scope="module")
def four_sources(sample_media, short_group_clip, tmp_path_factory) -> AbInputs:
    from benchmarks.face_crops import crop_group_faces

    folder = tmp_path_factory.mktemp("ab_review")
    faces = crop_group_faces(sample_media.group_photo, folder / "faces")
    sources = [sample_media.source_tom_hanks, sample_media.source_astronaut, *faces[:2]]
    return AbInputs(str(short_group_clip), [str(source) for source in sources], folder)


@pytest.fixture(scope="module")
def four_source_ab(four_sources, local_ray) -> AbResult:
    return four_sources.run()


def test_four_sources_analyse_the_target_once_and_rank_in_the_json(four_source_ab) -> None:
    renders = four_source_ab.job.renders
    assert [render.status for render in renders] == [RENDERED] * 4
    detections = sum(render.report.model_calls.get("yunet", 0) for render in renders)
    assert detections == 40, "each frame is analysed once across the four renders"
    assert sum(render.report.cache["hits"] for render in renders) == 120
    report = json.loads((four_source_ab.report.parent / "ab_report.json").read_text())
    ranked = report["comparison"]["sources"]
    assert [entry["source"] for entry in ranked] == [render.name for render in renders]
    for entry in ranked:
        # 40 frames: identity at every frame (at least 48 wanted), steadiness at every pair
        # of neighbours inside a chunk (4 chunks of 10 frames: 36 pairs).
        assert entry["identity_faces"] == 40
        assert 0.0 < entry["identity_worst"] <= entry["identity_mean"] < 1.0
        assert entry["flicker_pairs"] == 36 and entry["flicker"] > 0
        assert entry["frames_missed"] == 0 and entry["missed_ranges"] == []
    # The swapped faces are closer to their own source than to the first source's face.
    own = {entry["source"]: entry["identity_mean"] for entry in ranked}
    assert all(value > 0.2 for value in own.values()), own


def test_the_face_sheet_shows_every_source_s_faces_at_160_px(four_source_ab, detector) -> None:
    layout = four_source_ab.face_sheet_layout
    assert layout is not None and four_source_ab.face_sheet is not None
    sheet = read_image(four_source_ab.face_sheet)
    names = [render.name for render in four_source_ab.job.renders]
    people = {row.person for row in layout.rows}
    assert len(people) >= 2  # the group clip: one block of rows per person
    moments = len(layout.rows[0].faces_at)
    assert moments == 8
    for row in layout.rows:
        assert row.faces_at == tuple(range(moments)), f"{row.label} person {row.person}"
    assert [row.label for row in layout.rows if row.person == 0] == ["target", *names]
    # Every source's swapped face is found again on the sheet at least FACE_MIN px high.
    for number, row in enumerate(layout.rows):
        if row.label == "target" or row.person != 0:
            continue
        top = layout.header + number * layout.cell
        for column in (1, 1 + moments // 2, moments):
            x = column * layout.cell
            cell = sheet[top : top + layout.cell, x : x + layout.cell]
            found = detector.detect(np.ascontiguousarray(cell))
            assert found, f"no face in {row.label}'s cell at column {column}"
            x1, y1, x2, y2 = max(found, key=lambda face: face.score).bbox
            assert max(x2 - x1, y2 - y1) >= FACE_MIN, (row.label, column, (x2 - x1, y2 - y1))


def open_page(browser_: Chromium, page: Path) -> None:
    browser_.open(page.as_uri())
    browser_.evaluate(PAGE_HELPERS)
    if browser_.evaluate("abTest.h264()") == "":
        pytest.fail("this Chromium cannot play H.264 MP4 (build without proprietary codecs)")
    browser_.wait_for("abTest.loaded()", timeout=30)


def within_one_frame(frames: list[int], expected: int | None = None) -> bool:
    close = max(frames) - min(frames) <= 1
    return close and (expected is None or all(abs(frame - expected) <= 1 for frame in frames))


@browser
def test_the_page_plays_the_four_outputs_in_sync(four_source_ab, chromium, tmp_path) -> None:
    with headless_chromium(chromium, tmp_path / "chromium") as page:
        open_page(page, four_source_ab.report)
        # Every output loaded: four in the grid and the flip pair.
        assert page.evaluate("abTest.videos().length") == page.evaluate("abTest.all().length")
        assert page.evaluate("abTest.videos().length") == 4 + 2
        for frame in (31, 7, 22):
            frames = page.evaluate(f"abTest.scrubTo({frame})")
            assert within_one_frame(frames, frame), (frame, frames)
        page.screenshot(tmp_path / "scrubbed.png")
        # The timeline moves every player, and they agree when it stops.
        page.evaluate("abTest.scrubTo(0)")
        page.evaluate("document.getElementById('ab-play').click()")
        page.wait_for("abReview.frame() >= 12", timeout=20)
        page.evaluate("document.getElementById('ab-play').click()")
        page.evaluate("abTest.settle()")
        frames = page.evaluate("abTest.frames()")
        assert min(frames) >= 10 and within_one_frame(frames), frames
        # Step a frame forward and back.
        start = page.evaluate("abReview.frame()")
        page.evaluate("document.getElementById('ab-forward').click()")
        assert within_one_frame(page.evaluate("abTest.settle().then(abTest.frames)"), start + 1)
        page.evaluate("document.getElementById('ab-back').click()")
        assert within_one_frame(page.evaluate("abTest.settle().then(abTest.frames)"), start)
        page.screenshot(tmp_path / "paused.png")
    print(f"screenshots: {tmp_path}")


def indexed_page(folder: Path) -> Path:
    """A page over three clips whose frames show their own index (H.264 4:2:0, as outputs)."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for name in ("first", "second", "third"):
        clip = make_indexed_clip(
            folder / f"{name}.mp4",
            frames=INDEXED_FRAMES,
            rate=str(INDEXED_FPS),
            video_args=("-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "12", "-g", "12"),
        )
        entries.append(AbEntry(name, clip, INDEXED_FRAMES, INDEXED_FRAMES, 1.0))
    broken = folder / "broken.mp4"
    broken.write_bytes(b"not a video")
    entries.append(AbEntry("broken", broken, INDEXED_FRAMES, INDEXED_FRAMES, 1.0))
    page = folder / "report.html"
    write_ab_report(page, AbPage("indexed", INDEXED_FPS, INDEXED_FRAMES, entries))
    return page


@browser
def test_players_show_the_scrubbed_frame_and_the_flip_keeps_it(chromium, tmp_path) -> None:
    page_path = indexed_page(tmp_path / "site")
    with headless_chromium(chromium, tmp_path / "chromium") as page:
        open_page(page, page_path)
        # A file the browser cannot play says so; the others play on without it.
        notes = page.evaluate(
            "Array.from(document.querySelectorAll('.ab-unplayable')).map((note) => note.hidden)"
        )
        assert notes == [True, True, True, False]  # hidden, hidden, hidden, shown
        assert page.evaluate("abTest.videos().length") == 3 + 2
        for frame in (17, 3, 44, 30):
            page.evaluate(f"abTest.scrubTo({frame})")
            shown = page.evaluate("abTest.videos().map(abTest.shownIndex)")
            assert within_one_frame(shown, frame), (frame, shown)
        # Flip between two outputs: the other one appears, at the same frame.
        page.evaluate("document.getElementById('ab-select-b').selectedIndex = 2")
        page.evaluate("document.getElementById('ab-select-b').dispatchEvent(new Event('change'))")
        page.wait_for("document.getElementById('ab-flip-b').readyState >= 2")
        page.evaluate("abTest.scrubTo(21)")
        before = page.evaluate("abTest.shownIndex(document.getElementById('ab-flip-a'))")
        page.screenshot(tmp_path / "flip_a.png")
        page.evaluate("document.getElementById('ab-flip').click()")
        visible = page.evaluate(
            "['ab-flip-a', 'ab-flip-b'].filter((id) => "
            "getComputedStyle(document.getElementById(id)).visibility === 'visible')"
        )
        assert visible == ["ab-flip-b"]
        assert page.evaluate("document.getElementById('ab-flip-label').textContent") == "B: third"
        after = page.evaluate("abTest.shownIndex(document.getElementById('ab-flip-b'))")
        assert before == 21 and abs(after - 21) <= 1, (before, after)
        page.screenshot(tmp_path / "flip_b.png")
        # Sorting the ranking by a column reorders its rows.
        names = (
            "Array.from(document.querySelectorAll('#ab-ranking tbody tr'))"
            ".map((row) => row.cells[0].textContent)"
        )
        page.evaluate("document.querySelector('#ab-ranking thead th').click()")
        page.evaluate("document.querySelector('#ab-ranking thead th').click()")
        assert page.evaluate(names) == ["third", "second", "first", "broken"]
    print(f"screenshots: {tmp_path}")


def test_a_rerun_of_up_to_date_outputs_still_writes_a_page(four_sources, four_source_ab) -> None:
    """Nothing is rendered again, so nothing is measured: the page says so ("-") and still
    plays the outputs; the contact sheet decodes them instead."""
    again = four_sources.run()
    assert [render.status for render in again.job.renders] == [UP_TO_DATE] * 4
    assert all(entry.review is None for entry in again.entries)
    assert again.face_sheet is None and again.sheet.exists()
    assert again.report.read_text().count('class="ab-sync"') == 4 + 1
    report = json.loads((again.report.parent / "ab_report.json").read_text())
    assert all("identity_mean" not in entry for entry in report["comparison"]["sources"])
