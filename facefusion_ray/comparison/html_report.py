"""The A/B report: one self-contained HTML page comparing the renders of several sources."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from urllib.parse import quote

from facefusion_ray.atomic_files import temporary_file_beside
from facefusion_ray.errors import MediaError

STATUS_OK = "ok"
# Tableau 10: distinguishable lines for up to ten sources, then the colours repeat.
LINE_COLOURS = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
CHART_WIDTH = 760
CHART_HEIGHT = 260
CHART_MARGIN = (16, 20, 36, 48)  # top, right, bottom, left
MAX_X_TICKS = 8

_Scale = Callable[[float], float]
_FrameScale = Callable[[int], float]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; background: #fafafa; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid #ddd; padding: 0.35rem 0.7rem; text-align: right; }
th { background: #f0f0f0; } td.text { text-align: left; }
tr.failed td { background: #fdecea; }
img.sheet { max-width: 100%; border: 1px solid #ccc; }
.legend span { display: inline-block; margin-right: 1.2rem; }
.swatch { display: inline-block; width: 0.9rem; height: 0.9rem; margin-right: 0.3rem;
  vertical-align: middle; }
p.note { color: #555; max-width: 50rem; }
"""


@dataclass(frozen=True)
class AbEntry:
    """One source's render. output: the rendered video (None if the render failed), linked
    relative to the report's folder. similarity_*: cosine similarity of the swapped faces to
    the source, None when no face was measured. status: "ok" or what went wrong."""

    source: str
    output: Path | None
    frames_total: int
    frames_swapped: int
    similarity_mean: float | None
    similarity_min: float | None
    seconds: float
    status: str = STATUS_OK


def write_ab_report(
    path: str | os.PathLike[str],
    target: str,
    sheet: str | os.PathLike[str] | None,
    entries: Sequence[AbEntry],
    per_frame: Mapping[str, Mapping[int, Sequence[float]]] | None = None,
) -> None:
    """Write the report page atomically: a table of `entries`, the contact `sheet` (linked
    relative to the page, None to leave it out) and, with `per_frame` (source -> frame index ->
    similarity of each face), a line chart of the mean similarity per sampled frame."""
    report = Path(path)
    document = render_ab_report(report.parent, target, sheet, entries, per_frame)
    try:
        with temporary_file_beside(report, mode=0o644) as temporary:
            temporary.write_text(document, encoding="utf-8")
            os.replace(temporary, report)
    except OSError as error:
        raise MediaError(f"cannot write report {report}: {error.strerror or error}") from error


def render_ab_report(
    folder: Path,
    target: str,
    sheet: str | os.PathLike[str] | None,
    entries: Sequence[AbEntry],
    per_frame: Mapping[str, Mapping[int, Sequence[float]]] | None = None,
) -> str:
    """The report page as text, with links relative to `folder` (where the page will be)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>A/B face swap: {escape(target)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>A/B face swap of {escape(target)}</h1>",
        _entries_table(folder, entries),
        '<p class="note">Similarity is the cosine similarity of SFace embeddings of each '
        "swapped face to the source face (1 is the same embedding; different people usually "
        "score below 0.4). Mean and minimum are over the measured faces.</p>",
    ]
    if sheet is not None:
        href = _relative_href(Path(sheet), folder)
        parts += [
            "<h2>Contact sheet</h2>",
            f'<a href="{href}"><img class="sheet" src="{href}" '
            'alt="Each source face followed by the same sampled frames of its render"></a>',
        ]
    if per_frame:
        parts += ["<h2>Similarity per sampled frame</h2>", similarity_chart_svg(per_frame)]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _entries_table(folder: Path, entries: Sequence[AbEntry]) -> str:
    header = (
        "<tr><th>Source</th><th>Output</th><th>Frames swapped</th><th>Frames</th>"
        "<th>Mean similarity</th><th>Min similarity</th><th>Seconds</th><th>Status</th></tr>"
    )
    rows = [_entry_row(folder, entry) for entry in entries]
    return "<table>\n" + "\n".join([header, *rows]) + "\n</table>"


def _entry_row(folder: Path, entry: AbEntry) -> str:
    if entry.output is None:
        output = "&ndash;"
    else:
        output = f'<a href="{_relative_href(entry.output, folder)}">{escape(entry.output.name)}</a>'
    failed = entry.status != STATUS_OK
    cells = [
        f'<td class="text">{escape(entry.source)}</td>',
        f'<td class="text">{output}</td>',
        f"<td>{entry.frames_swapped}</td>",
        f"<td>{entry.frames_total}</td>",
        f"<td>{_similarity_text(entry.similarity_mean)}</td>",
        f"<td>{_similarity_text(entry.similarity_min)}</td>",
        f"<td>{entry.seconds:.1f}</td>",
        f'<td class="text">{escape(entry.status)}</td>',
    ]
    row_class = ' class="failed"' if failed else ""
    return f"<tr{row_class}>" + "".join(cells) + "</tr>"


def _similarity_text(value: float | None) -> str:
    return "&ndash;" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _relative_href(file: Path, folder: Path) -> str:
    """A URL path to `file` from `folder`, percent-encoded and safe inside an attribute."""
    relative = Path(os.path.relpath(os.path.abspath(file), os.path.abspath(folder)))
    return escape(quote(relative.as_posix()))


def similarity_chart_svg(per_frame: Mapping[str, Mapping[int, Sequence[float]]]) -> str:
    """An inline SVG line chart: one line per source of the mean similarity of its faces in
    each sampled frame (frames without a measured face are left out), with a legend."""
    series = {source: _frame_means(frames) for source, frames in per_frame.items()}
    points = [point for means in series.values() for point in means]
    if not points:
        return "<p>No swapped face was measured.</p>"
    top, right, bottom, left = CHART_MARGIN
    plot_width = CHART_WIDTH - left - right
    plot_height = CHART_HEIGHT - top - bottom
    first_frame = min(frame for frame, _ in points)
    last_frame = max(frame for frame, _ in points)
    frame_span = max(last_frame - first_frame, 1)
    lowest = min(0.0, math.floor(min(value for _, value in points) * 5) / 5)

    def x_of(frame: int) -> float:
        if last_frame == first_frame:
            return left + plot_width / 2
        return left + (frame - first_frame) / frame_span * plot_width

    def y_of(value: float) -> float:
        return top + (1.0 - value) / (1.0 - lowest) * plot_height

    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" '
        f'height="{CHART_HEIGHT}" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" '
        'aria-label="Mean identity similarity per sampled frame, one line per source">',
        f'<rect x="{left}" y="{top}" width="{plot_width}" height="{plot_height}" '
        'fill="#fff" stroke="#ccc"/>',
    ]
    svg += _y_axis(lowest, left, plot_width, y_of)
    svg += _x_axis(sorted({frame for frame, _ in points}), top + plot_height, x_of)
    for number, (source, means) in enumerate(series.items()):
        colour = LINE_COLOURS[number % len(LINE_COLOURS)]
        coordinates = [(x_of(frame), y_of(value)) for frame, value in means]
        if len(coordinates) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates)
            svg.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>'
            )
        for (x, y), (frame, value) in zip(coordinates, means, strict=True):
            label = escape(f"{source}, frame {frame}: {value:.3f}")
            svg.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{label}</title>'
                "</circle>"
            )
    svg.append("</svg>")
    legend = "".join(
        f'<span><span class="swatch" style="background:{LINE_COLOURS[n % len(LINE_COLOURS)]}">'
        f"</span>{escape(source)}</span>"
        for n, source in enumerate(series)
    )
    return "\n".join(svg) + f'\n<div class="legend">{legend}</div>'


def _frame_means(frames: Mapping[int, Sequence[float]]) -> list[tuple[int, float]]:
    means = []
    for frame in sorted(frames):
        values = [value for value in frames[frame] if math.isfinite(value)]
        if values:
            means.append((frame, math.fsum(values) / len(values)))
    return means


def _y_axis(lowest: float, left: int, plot_width: int, y_of: _Scale) -> list[str]:
    lines = []
    tick = 1.0
    while tick >= lowest - 1e-9:
        y = y_of(tick)
        lines.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_width}" y2="{y:.1f}" '
            'stroke="#eee"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{tick:.1f}</text>"
        )
        tick = round(tick - 0.2, 10)
    return lines


def _x_axis(frames: list[int], baseline: float, x_of: _FrameScale) -> list[str]:
    step = max(1, math.ceil(len(frames) / MAX_X_TICKS))
    return [
        f'<text x="{x_of(frame):.1f}" y="{baseline + 16:.1f}" font-size="11" '
        f'text-anchor="middle">{frame}</text>'
        for frame in frames[::step]
    ]
