"""The A/B report: one self-contained page that ranks the sources, plays their outputs in
sync and shows the faces up close. No server and no network: the outputs and sheets are
linked relative to the page, so it works from the output folder or an S3 website prefix."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from facefusion_ray.atomic_files import temporary_file_beside
from facefusion_ray.comparison.review_figures import ReviewFigures
from facefusion_ray.comparison.similarity_chart import similarity_chart_svg
from facefusion_ray.errors import MediaError

STATUS_OK = "ok"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; background: #fafafa; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid #ddd; padding: 0.35rem 0.7rem; text-align: right; }
th { background: #f0f0f0; } td.text { text-align: left; } td { white-space: nowrap; }
table.ab-sortable th { cursor: pointer; user-select: none; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
tr.failed td { background: #fdecea; }
img.sheet { max-width: 100%; border: 1px solid #ccc; }
.legend span { display: inline-block; margin-right: 1.2rem; }
.swatch { display: inline-block; width: 0.9rem; height: 0.9rem; margin-right: 0.3rem;
  vertical-align: middle; }
p.note { color: #555; max-width: 60rem; }
.ab-grid { display: grid; gap: 0.6rem;
  grid-template-columns: repeat(auto-fill, minmax(22rem, 1fr)); }
.ab-grid figure { margin: 0; background: #111; color: #eee; }
.ab-grid video, .ab-flip video { width: 100%; display: block; background: #000; }
.ab-grid figcaption { padding: 0.3rem 0.5rem; font-size: 0.9rem; }
.ab-controls { position: sticky; top: 0; z-index: 2; background: #fafafa; padding: 0.5rem 0;
  display: flex; gap: 0.5rem; align-items: center; flex-wrap: wrap; }
.ab-controls input[type=range] { flex: 1; min-width: 16rem; }
.ab-flip { position: relative; max-width: 60rem; }
.ab-flip video.ab-hidden { visibility: hidden; position: absolute; top: 0; left: 0; }
.ab-unplayable { color: #b00; padding: 0.3rem 0.5rem; }
"""


@dataclass(frozen=True)
class AbEntry:
    """One source's render. output: the rendered video (None if the render failed), linked
    relative to the page. review: what was measured while rendering (None: nothing, e.g. an
    output that was already up to date). status: "ok" or what went wrong."""

    source: str
    output: Path | None
    frames_total: int
    frames_swapped: int
    seconds: float
    review: ReviewFigures | None = None
    status: str = STATUS_OK

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "output": self.output.name if self.output is not None else None,
            "frames_total": self.frames_total,
            "frames_swapped": self.frames_swapped,
            "seconds": self.seconds,
            "status": self.status,
            **(self.review.to_dict() if self.review is not None else {}),
        }


@dataclass(frozen=True)
class AbPage:
    """Everything on the page. fps and frames: the outputs' (they share the target's).
    per_frame: source -> frame -> identity similarity of the faces measured there."""

    target: str
    fps: float
    frames: int
    entries: Sequence[AbEntry]
    face_sheet: Path | None = None
    contact_sheet: Path | None = None
    per_frame: Mapping[str, Mapping[int, Sequence[float]]] | None = None


def write_ab_report(path: str | os.PathLike[str], page: AbPage) -> None:
    """Write the page atomically at `path`; links are relative to its folder."""
    report = Path(path)
    document = render_ab_report(report.parent, page)
    try:
        with temporary_file_beside(report, mode=0o644) as temporary:
            temporary.write_text(document, encoding="utf-8")
            os.replace(temporary, report)
    except OSError as error:
        raise MediaError(f"cannot write report {report}: {error.strerror or error}") from error


def render_ab_report(folder: Path, page: AbPage) -> str:
    """The page as text, with links relative to `folder` (where the page will be)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>A/B face swap: {escape(page.target)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>A/B face swap of {escape(page.target)}</h1>",
        "<h2>Ranking</h2>",
        ranking_table(folder, page.entries),
        _MEASURES_NOTE,
    ]
    playable = [entry for entry in page.entries if entry.output is not None]
    if playable:
        parts += ["<h2>Outputs in sync</h2>", players_section(folder, playable, page.frames)]
    for title, sheet, alt in (
        ("Faces up close", page.face_sheet, _FACE_SHEET_ALT),
        ("Contact sheet", page.contact_sheet, _CONTACT_SHEET_ALT),
    ):
        if sheet is not None:
            href = relative_href(sheet, folder)
            parts += [
                f"<h2>{title}</h2>",
                f'<a href="{href}"><img class="sheet" src="{href}" alt="{alt}"></a>',
            ]
    if page.per_frame:
        parts += ["<h2>Identity similarity per measured frame</h2>"]
        parts += [similarity_chart_svg(page.per_frame)]
    data = json.dumps({"fps": page.fps, "frames": page.frames})
    parts += [
        f'<script type="application/json" id="ab-data">{escape(data, quote=False)}</script>',
        f"<script>{_player_script()}</script>" if playable else "",
        "</body></html>\n",
    ]
    return "\n".join(parts)


_MEASURES_NOTE = (
    '<p class="note">Measured while each output was rendered, before encoding. '
    "<b>Identity</b>: cosine similarity of SFace embeddings of the swapped face to the source "
    "face (1 is the same embedding; different people usually score below 0.4), over many "
    "frames spread through the video, the faces of a frame taking turns; <b>worst</b> is the "
    "lowest, with its frame. <b>Flicker added</b>: how much more the swapped face region "
    "changes from one frame to the next than the target's own face did there (mean grey "
    "levels of 255, in the previous frame's face box; lower is steadier). <b>Missed</b>: frames "
    "where a face was found but none swapped. Click a heading to sort, a frame to show it "
    "in the players.</p>"
)
_FACE_SHEET_ALT = (
    "Per person, the target's face then each source's swapped face at the sampled frames, "
    "each row starting with the source photo"
)
_CONTACT_SHEET_ALT = "Each source face followed by the same sampled frames of its output"

_COLUMNS = (
    "Source", "Output", "Identity mean", "Identity worst", "Flicker added", "Flicker",
    "Missed frames", "Frames swapped", "Frames", "Seconds", "Status",
)  # fmt: skip


def ranking_table(folder: Path, entries: Sequence[AbEntry]) -> str:
    header = "".join(f'<th scope="col">{name}</th>' for name in _COLUMNS)
    rows = [_entry_row(folder, entry) for entry in entries]
    return (
        f'<table class="ab-sortable" id="ab-ranking"><thead><tr>{header}</tr></thead>\n'
        "<tbody>\n" + "\n".join(rows) + "\n</tbody></table>"
    )


def _entry_row(folder: Path, entry: AbEntry) -> str:
    if entry.output is None:
        output = "&ndash;"
    else:
        output = f'<a href="{relative_href(entry.output, folder)}">{escape(entry.output.name)}</a>'
    review = entry.review
    cells = [
        _cell(escape(entry.source), entry.source, text=True),
        _cell(output, entry.output.name if entry.output else "", text=True),
        _number_cell(review.identity_mean if review else None),
        _number_cell(
            review.identity_worst if review else None,
            review.identity_worst_frame if review else None,
        ),
        _number_cell(
            review.flicker_added if review else None,
            review.flicker_worst_frame if review else None,
            digits=2,
        ),
        _number_cell(review.flicker if review else None, digits=2),
        _missed_cell(review),
        _cell(str(entry.frames_swapped), entry.frames_swapped),
        _cell(str(entry.frames_total), entry.frames_total),
        _cell(f"{entry.seconds:.1f}", entry.seconds),
        _cell(escape(entry.status), entry.status, text=True),
    ]
    row_class = ' class="failed"' if entry.status != STATUS_OK else ""
    return f"<tr{row_class}>" + "".join(cells) + "</tr>"


def _cell(content: str, sort_key: object, text: bool = False) -> str:
    css = ' class="text"' if text else ""
    return f'<td{css} data-sort="{escape(str(sort_key))}">{content}</td>'


def _number_cell(value: float | None, frame: int | None = None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return _cell("&ndash;", "")
    shown = f"{value:.{digits}f}"
    if frame is not None:
        shown += f" {frame_link(frame, f'at {frame}')}"
    return _cell(shown, f"{value:.6f}")


def _missed_cell(review: ReviewFigures | None) -> str:
    if review is None:
        return _cell("&ndash;", "")
    spans = [
        frame_link(first, f"{first}" if first == last else f"{first}&ndash;{last}")
        for first, last in review.missed_ranges[:6]
    ]
    more = " &hellip;" if len(review.missed_ranges) > 6 else ""
    listed = f" ({', '.join(spans)}{more})" if spans else ""
    return _cell(f"{review.frames_missed}{listed}", review.frames_missed)


def frame_link(frame: int, text: str) -> str:
    return f'<a href="#ab-players" data-frame="{frame}">{text}</a>'


def players_section(folder: Path, entries: Sequence[AbEntry], frames: int) -> str:
    """One player per output on a shared timeline, and the flip view of two of them."""
    figures = []
    options = []
    for entry in entries:
        assert entry.output is not None
        href = relative_href(entry.output, folder)
        name = escape(entry.source)
        figures.append(
            f'<figure><video class="ab-sync" src="{href}" data-source="{name}" muted '
            'playsinline preload="auto"></video>'
            f'<figcaption>{name}</figcaption><div class="ab-unplayable" hidden>This browser '
            f'cannot play this file; <a href="{href}">download it</a>.</div></figure>'
        )
        options.append((href, name))
    second = options[1] if len(options) > 1 else options[0]
    return "\n".join(
        [
            '<div class="ab-controls" id="ab-players">',
            '<button type="button" id="ab-back" title="Previous frame (left arrow)">&#9664;|'
            "</button>",
            '<button type="button" id="ab-play" title="Play or pause (space)">Play</button>',
            '<button type="button" id="ab-forward" title="Next frame (right arrow)">|&#9654;'
            "</button>",
            '<input type="range" id="ab-scrub" min="0" '
            f'max="{max(0, frames - 1)}" step="1" value="0" '
            'aria-label="Frame">',
            '<span id="ab-frame">frame 0</span>',
            "</div>",
            f'<div class="ab-grid">{"".join(figures)}</div>',
            "<h2>Flip between two outputs</h2>",
            '<div class="ab-controls">',
            f'<label>A <select id="ab-select-a">{_options(options, options[0][0])}</select>'
            "</label>",
            f'<label>B <select id="ab-select-b">{_options(options, second[0])}</select></label>',
            '<button type="button" id="ab-flip" title="Flip (F)">Flip A/B</button>',
            f'<span id="ab-flip-label">A: {options[0][1]}</span>',
            "</div>",
            '<div class="ab-flip">',
            f'<video class="ab-sync" id="ab-flip-a" src="{options[0][0]}" muted playsinline '
            'preload="auto"></video>',
            f'<video class="ab-sync ab-hidden" id="ab-flip-b" src="{second[0]}" muted '
            'playsinline preload="auto"></video>',
            "</div>",
        ]
    )


def _options(options: Sequence[tuple[str, str]], selected: str) -> str:
    return "".join(
        f'<option value="{href}"{" selected" if href == selected else ""}>{name}</option>'
        for href, name in options
    )


def _player_script() -> str:
    script = resources.files("facefusion_ray.comparison").joinpath("assets/sync_players.js")
    return script.read_text(encoding="utf-8").replace("</script", "<\\/script")


def relative_href(file: Path, folder: Path) -> str:
    """A URL path to `file` from `folder`, percent-encoded and safe inside an attribute."""
    relative = Path(os.path.relpath(os.path.abspath(file), os.path.abspath(folder)))
    return escape(quote(relative.as_posix()))
