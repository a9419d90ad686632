"""Helpers of the notebooks: small sample inputs, and plots saved as PNG files.

Figures are made with `matplotlib.figure.Figure` (no pyplot, so no interactive backend is
needed: PNGs are drawn with Agg), saved into the output folder and returned as paths, which
the notebooks show inline with `IPython.display.Image`.
"""

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from facefusion_ray.media.ffmpeg_tool import run_ffmpeg
from facefusion_ray.sample_media import FPS

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARK_RESULTS = REPO_ROOT / "benchmarks" / "results"
# Notebook outputs by default: out/ is ignored by git.
DEFAULT_OUTPUT = REPO_ROOT / "out" / "notebooks"
DPI = 100

Scenarios = Mapping[str, Mapping[str, Any]]


# Inputs ------------------------------------------------------------------------------------


def trim_video(
    source: Path, destination: Path, frames: int, width: int = 640, height: int = 360
) -> Path:
    """The first `frames` frames of `source` at `width`x`height`, with its audio cut to match."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(
        [
            "-loglevel", "error", "-y",
            "-i", str(source),
            "-frames:v", str(frames),
            "-t", f"{frames / FPS:.4f}",
            "-vf", f"scale={width}:{height}",
            "-c:v", "libx264", "-crf", "12", "-preset", "veryfast",
            "-c:a", "aac",
            str(destination),
        ],
        "cannot trim the sample video",
    )  # fmt: skip
    return destination


# A/B -----------------------------------------------------------------------------------------


def mean_similarity_per_frame(
    similarity: Mapping[str, Mapping[int, Sequence[float]]],
) -> dict[str, tuple[list[int], list[float]]]:
    """Per source, the sampled frame indices in order and the mean similarity of the swapped
    faces at each (frames without a measured face are left out)."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for source, per_frame in similarity.items():
        frames = sorted(frame for frame, values in per_frame.items() if len(values) > 0)
        series[source] = (frames, [float(np.mean(per_frame[frame])) for frame in frames])
    return series


def plot_similarity_over_time(
    similarity: Mapping[str, Mapping[int, Sequence[float]]], output: Path
) -> Path:
    """One line per source: mean SFace similarity of the swapped faces to it, by frame."""
    figure = Figure(figsize=(9, 4.5), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    for source, (frames, means) in mean_similarity_per_frame(similarity).items():
        axes.plot(frames, means, marker="o", markersize=3, label=source)
    axes.set_xlabel("frame index")
    axes.set_ylabel("mean identity similarity (SFace cosine)")
    axes.set_title("Identity similarity of the swapped faces to their source, over time")
    axes.grid(alpha=0.3)
    if similarity:
        axes.legend()
    return save(figure, output)


# Benchmark results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkRun:
    path: Path
    recorded_at: str
    machine: Mapping[str, Any]
    scenarios: Scenarios

    @property
    def label(self) -> str:
        machine = self.machine
        return (
            f"{self.recorded_at[:10]}, {machine.get('cpu_model', '?')}, "
            f"{machine.get('cores', '?')} cores"
        )


def load_benchmark_run(location: Path) -> BenchmarkRun:
    """A results JSON file, or the newest `*.json` of a folder of them (by file name, which
    starts with the date)."""
    path = location
    if location.is_dir():
        files = sorted(location.glob("*.json"))
        if not files:
            raise FileNotFoundError(f"no benchmark results (*.json) in {location}")
        path = files[-1]
    document = json.loads(path.read_text())
    return BenchmarkRun(
        path=path,
        recorded_at=str(document.get("recorded_at", "")),
        machine=document.get("machine", {}),
        scenarios=document.get("scenarios", {}),
    )


def plot_throughput(scenarios: Scenarios, output: Path) -> Path | None:
    """Frames per second of every scenario that records them, with and without start-up."""
    names = [name for name, result in scenarios.items() if "frames_per_second" in result]
    if not names:
        return None
    figure = Figure(figsize=(10, 0.45 * len(names) + 1.5), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    positions = np.arange(len(names))
    overall = [float(scenarios[name]["frames_per_second"]) for name in names]
    after = [
        float(scenarios[name].get("frames_per_second_after_startup", np.nan)) for name in names
    ]
    axes.barh(positions - 0.2, overall, height=0.4, label="frames/s (wall)")
    axes.barh(positions + 0.2, after, height=0.4, label="frames/s after start-up")
    axes.set_yticks(positions, names)
    axes.invert_yaxis()
    axes.set_xlabel("frames per second")
    axes.set_title("Throughput per scenario")
    axes.grid(axis="x", alpha=0.3)
    legend_below(axes)
    return save(figure, output)


def cache_pairs(scenarios: Scenarios) -> list[tuple[str, str, str]]:
    """(label, cold scenario, warm scenario): `X_cold` with its `X_warm...` re-render."""
    pairs = []
    for name in scenarios:
        if not name.endswith("_cold"):
            continue
        prefix = name.removesuffix("_cold")
        warm = [other for other in scenarios if other.startswith(f"{prefix}_warm")]
        if warm:
            pairs.append((prefix, name, warm[0]))
    return pairs


def plot_cache_speedup(scenarios: Scenarios, output: Path) -> Path | None:
    """Wall seconds of each cold run against its warm-cache re-render, with the speed-up."""
    pairs = cache_pairs(scenarios)
    if not pairs:
        return None
    figure = Figure(figsize=(max(6.0, 2.2 * len(pairs) + 2), 4.5), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    positions = np.arange(len(pairs))
    cold = [float(scenarios[name]["wall_seconds"]) for _, name, _ in pairs]
    warm = [float(scenarios[name]["wall_seconds"]) for _, _, name in pairs]
    axes.bar(positions - 0.2, cold, width=0.4, label="cold (analyses, fills the cache)")
    axes.bar(positions + 0.2, warm, width=0.4, label="warm (reads the cache, new source)")
    for position, cold_seconds, warm_seconds in zip(positions, cold, warm, strict=True):
        axes.annotate(
            f"{cold_seconds / warm_seconds:.2f}x",
            (position, max(cold_seconds, warm_seconds)),
            ha="center",
            va="bottom",
        )
    axes.set_xticks(positions, [label for label, _, _ in pairs], rotation=15, ha="right")
    axes.margins(y=0.12)
    axes.set_ylabel("wall seconds")
    axes.set_title("Analysis cache: cold run against warm re-render (speed-up above)")
    axes.grid(axis="y", alpha=0.3)
    legend_below(axes)
    return save(figure, output)


def worker_pairs(scenarios: Scenarios) -> list[tuple[str, str, str]]:
    """(label, 1-worker scenario, 2-worker scenario) with otherwise the same name."""
    pairs = []
    for name in scenarios:
        if "_1_worker" not in name:
            continue
        twin = name.replace("_1_worker", "_2_workers")
        if twin in scenarios and "frames_per_second" in scenarios[twin]:
            pairs.append((name.replace("_1_worker", ""), name, twin))
    return pairs


def ab_points(scenarios: Scenarios) -> list[tuple[int, float, float]]:
    """(sources, A/B wall seconds, separate renders' wall seconds) of the `ab_N_source(s)`
    scenarios, by number of sources."""
    points = []
    for name, result in scenarios.items():
        match = re.fullmatch(r"ab_(\d+)_sources?", name)
        if not match or "ab" not in result or "separate" not in result:
            continue
        points.append(
            (
                int(result.get("sources", match.group(1))),
                float(result["ab"]["wall_seconds"]),
                float(result["separate"]["total_wall_seconds"]),
            )
        )
    return sorted(points)


def plot_scaling(scenarios: Scenarios, output: Path) -> Path | None:
    """1 against 2 workers (frames/s) and, when recorded, A/B with N sources against N
    separate renders (wall seconds)."""
    pairs = worker_pairs(scenarios)
    points = ab_points(scenarios)
    panels = int(bool(pairs)) + int(bool(points))
    if not panels:
        return None
    figure = Figure(figsize=(6.5 * panels, 4.5), dpi=DPI, layout="constrained")
    all_axes: list[Axes] = list(np.atleast_1d(figure.subplots(1, panels)))
    if pairs:
        plot_worker_scaling(all_axes.pop(0), scenarios, pairs)
    if points:
        plot_ab_scaling(all_axes.pop(0), points)
    return save(figure, output)


def plot_worker_scaling(
    axes: Axes, scenarios: Scenarios, pairs: Sequence[tuple[str, str, str]]
) -> None:
    """Speed-up of 2 workers over 1 (frames/s), against the ideal 2x; the frames/s above."""
    positions = np.arange(len(pairs))
    one = [float(scenarios[pair[1]]["frames_per_second"]) for pair in pairs]
    two = [float(scenarios[pair[2]]["frames_per_second"]) for pair in pairs]
    speedups = [b / a for a, b in zip(one, two, strict=True)]
    axes.bar(positions, speedups, width=0.5, label="2 workers / 1 worker (frames/s, wall)")
    axes.axhline(2.0, color="gray", linestyle="--", label="ideal (2x)")
    for position, speedup, a, b in zip(positions, speedups, one, two, strict=True):
        axes.annotate(
            f"{speedup:.2f}x\n{a:.1f} -> {b:.1f} fps", (position, speedup), ha="center", va="bottom"
        )
    axes.set_xticks(positions, [label for label, _, _ in pairs], rotation=15, ha="right")
    axes.set_ylim(0, max(2.2, *speedups) * 1.2)
    axes.set_ylabel("speed-up")
    axes.set_title("Worker scaling: 2 workers against 1")
    axes.grid(axis="y", alpha=0.3)
    legend_below(axes)


def plot_ab_scaling(axes: Axes, points: Sequence[tuple[int, float, float]]) -> None:
    sources = [point[0] for point in points]
    axes.plot(sources, [point[1] for point in points], marker="o", label="one A/B job")
    axes.plot(sources, [point[2] for point in points], marker="s", label="separate renders")
    axes.set_xticks(sources)
    axes.set_ylim(bottom=0)
    axes.set_xlabel("sources")
    axes.set_ylabel("wall seconds")
    axes.set_title("A/B with N sources against N separate renders")
    axes.grid(alpha=0.3)
    axes.legend()


LENGTH_SCENARIO = re.compile(r"(?P<size>\d+p)(?:_x\d+_length)?_engine_(?P<workers>\d+)_workers?")


def length_series(scenarios: Scenarios) -> dict[str, list[tuple[int, float, float]]]:
    """Per resolution and worker count, (frames, peak actor RSS MiB, driver RSS MiB) of the
    engine runs at different video lengths (`720p_engine_2_workers`,
    `720p_x4_length_engine_2_workers`); only series with at least two lengths."""
    series: dict[str, list[tuple[int, float, float]]] = {}
    for name, result in scenarios.items():
        match = LENGTH_SCENARIO.fullmatch(name)
        memory = result.get("peak_memory_mib", {})
        actors = [float(value) for key, value in memory.items() if key.startswith("actor")]
        if not match or not actors or "frames" not in result:
            continue
        label = f"{match.group('size')}, {match.group('workers')} workers"
        driver = float(memory.get("driver", np.nan))
        series.setdefault(label, []).append((int(result["frames"]), max(actors), driver))
    return {
        label: sorted(points) for label, points in series.items() if len({p[0] for p in points}) > 1
    }


def plot_memory_against_length(scenarios: Scenarios, output: Path) -> Path | None:
    """Peak RSS of the largest actor and of the driver against the video's frame count."""
    series = length_series(scenarios)
    if not series:
        return None
    figure = Figure(figsize=(7.5, 4.5), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    for label, points in series.items():
        frames = [point[0] for point in points]
        axes.plot(frames, [point[1] for point in points], marker="o", label=f"{label}: actor")
        axes.plot(
            frames,
            [point[2] for point in points],
            marker="s",
            linestyle="--",
            label=f"{label}: driver",
        )
    axes.set_xlabel("frames in the video")
    axes.set_ylabel("peak RSS (MiB)")
    top = np.nanmax([point[1:] for points in series.values() for point in points])
    axes.set_ylim(0, top * 1.15)
    axes.set_title("Peak memory against video length")
    axes.grid(alpha=0.3)
    legend_below(axes)
    return save(figure, output)


def plot_stage_shares(scenarios: Scenarios, output: Path) -> Path | None:
    """Share of the workers' time in each stage, stacked per scenario; the rest is outside."""
    names = [name for name, result in scenarios.items() if result.get("stage_share_of_worker_time")]
    if not names:
        return None
    stages = sorted(
        {stage for name in names for stage in scenarios[name]["stage_share_of_worker_time"]}
    )
    figure = Figure(figsize=(10, 0.45 * len(names) + 1.5), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    positions = np.arange(len(names))
    left = np.zeros(len(names))
    for stage in [*stages, "outside"]:
        if stage == "outside":
            shares = np.clip(1.0 - left, 0.0, None)
        else:
            shares = np.array(
                [
                    float(scenarios[name]["stage_share_of_worker_time"].get(stage, 0.0))
                    for name in names
                ]
            )
        axes.barh(positions, shares, left=left, label=stage)
        left = left + shares
    axes.set_yticks(positions, names)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("share of the workers' time (wall x workers)")
    axes.set_title("Where the time goes")
    legend_below(axes, columns=len(stages) + 1)
    return save(figure, output)


def show(path: Path | None, missing: str = "") -> None:
    """Shows a saved plot inline, or says which results it needs when there was nothing to plot."""
    from IPython.display import Image, display

    if path is None:
        print(f"skipped: {missing or 'nothing to plot'}")
    else:
        display(Image(filename=str(path)))


def legend_below(axes: Axes, columns: int = 2) -> None:
    handles, labels = axes.get_legend_handles_labels()
    figure = axes.get_figure()
    assert isinstance(figure, Figure)
    figure.legend(handles, labels, loc="outside lower center", ncol=columns, frameon=False)


def save(figure: Figure, output: Path) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, bbox_inches="tight")
    return output
