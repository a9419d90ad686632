"""An inline SVG chart of identity similarity per measured frame, one line per source."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

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
