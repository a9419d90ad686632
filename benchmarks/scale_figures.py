"""Figures of a scale run from the catalog job's report, and the projection to a larger catalog
from runs of several sizes."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

PROJECTED_RENDERS = 10_000
# The targets (judged in the benchmark, not in unit tests).
READ_TARGET = 1.1
RSS_TARGET_MIB = 1024
RSS_TARGET_RENDERS = 2400
PREPARATION_TARGET_MS = 50.0


def job_figures(report: Mapping[str, Any]) -> dict[str, Any]:
    renders = list(report["renders"])
    preparations = [float(render.get("preparation_seconds", 0.0)) for render in renders]
    # Renders whose sources the driver still had to analyse, and those whose were analysed.
    with_sources = [
        seconds
        for seconds, render in zip(preparations, renders, strict=True)
        if render["report"] and render["report"].get("source_model_calls")
    ]
    without_sources = [
        seconds
        for seconds, render in zip(preparations, renders, strict=True)
        if render["report"] and not render["report"].get("source_model_calls")
    ]
    chunks = sum(int(render["chunks"]) for render in renders)
    dispatched = int(report.get("chunks_dispatched", 0))
    driver_peaks = [
        render["report"]["peak_memory_bytes"].get("driver", 0)
        for render in renders
        if render["report"]
    ]
    return {
        "job_seconds": report["seconds"],
        "startup_seconds": report["startup_seconds"],
        "renders_per_second": round(len(renders) / float(report["seconds"]), 3),
        "counts": report["counts"],
        "workers_replaced": report["workers_replaced"],
        "chunks_retried_after_store_errors": report.get("chunks_retried_after_store_errors", 0),
        "chunks": chunks,
        "chunks_dispatched": dispatched,
        "preparation_ms_per_render": milliseconds(preparations),
        "preparation_ms_sources_analysed_in_render": milliseconds(with_sources),
        "preparation_ms_sources_already_analysed": milliseconds(without_sources),
        "scheduling_ms_per_chunk": round(
            1000 * float(report.get("scheduling_seconds", 0.0)) / max(1, dispatched), 3
        ),
        "driver_peak_rss_mib_reported": round(max(driver_peaks, default=0) / 2**20, 1),
        "worker_stage_seconds": stage_totals(renders),
    }


def milliseconds(values: Sequence[float]) -> dict[str, float | int]:
    if not values:
        return {"renders": 0}
    ordered = sorted(values)
    return {
        "renders": len(values),
        "mean": round(1000 * statistics.fmean(values), 2),
        "median": round(1000 * statistics.median(values), 2),
        "p95": round(1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "total_seconds": round(sum(values), 2),
    }


def stage_totals(renders: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for render in renders:
        for stage, seconds in (render["report"] or {}).get("stage_seconds", {}).items():
            totals[stage] = totals.get(stage, 0.0) + float(seconds)
    return {stage: round(seconds, 2) for stage, seconds in sorted(totals.items())}


def projection(runs: Sequence[Mapping[str, Any]], renders: int = PROJECTED_RENDERS) -> dict:
    """Job time and driver peak RSS at `renders`, from a least-squares line through the runs
    (renders -> figure), with the growth exponent between the smallest and largest run
    (1: linear, below 1: sub-linear)."""
    points = sorted((run["catalog"]["renders"], run) for run in runs)
    if len(points) < 2:
        return {}
    sizes = [float(size) for size, _ in points]
    fitted: dict[str, Any] = {"renders": renders, "from_renders": [int(s) for s in sizes]}
    for name, pick in (
        ("job_seconds", lambda run: float(run["job_seconds"])),
        ("driver_peak_rss_mib", lambda run: float(run["driver"]["peak_rss_mib"])),
        ("preparation_seconds_total", lambda run: prep_total(run)),
    ):
        values = [pick(run) for _, run in points]
        slope, intercept = line(sizes, values)
        exponent = math.log(values[-1] / values[0]) / math.log(sizes[-1] / sizes[0])
        fitted[name] = {
            "per_render": round(slope, 5),
            "fixed": round(intercept, 2),
            "projected": round(intercept + slope * renders, 1),
            "growth_exponent": round(exponent, 3),
        }
    return fitted


def prep_total(run: Mapping[str, Any]) -> float:
    return float(run["preparation_ms_per_render"]["total_seconds"])


def line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    return slope, mean_y - slope * mean_x


def targets(runs: Sequence[Mapping[str, Any]], fitted: Mapping[str, Any]) -> dict[str, Any]:
    """The issue's targets, judged on every run (worst case) and on the projection."""
    if not runs:
        return {}
    judged: dict[str, Any] = {}
    worst_read = max(run["object_store"]["read_over_catalog_bytes"] for run in runs)
    judged["bytes_read_over_catalog"] = {
        "worst": worst_read,
        "target": READ_TARGET,
        "met": worst_read <= READ_TARGET,
    }
    twice = sum(run["chunks_rendered_twice"] for run in runs)
    judged["chunks_rendered_twice"] = {"total": twice, "target": 0, "met": twice == 0}
    prepared = [
        run["preparation_ms_sources_already_analysed"].get("mean")
        for run in runs
        if run["preparation_ms_sources_already_analysed"]["renders"]
    ]
    judged["preparation_ms_after_sources_analysed"] = {
        "worst_mean": max(prepared) if prepared else None,
        "target": PREPARATION_TARGET_MS,
        "met": bool(prepared) and max(prepared) <= PREPARATION_TARGET_MS,
    }
    largest = max(runs, key=lambda run: run["catalog"]["renders"])
    rss = fitted.get("driver_peak_rss_mib", {})
    at_target = largest["driver"]["peak_rss_mib"]
    if rss and largest["catalog"]["renders"] < RSS_TARGET_RENDERS:
        at_target = rss["fixed"] + rss["per_render"] * RSS_TARGET_RENDERS
    judged["driver_peak_rss_mib_at_2400_renders"] = {
        "value": round(at_target, 1),
        "measured_at_renders": largest["catalog"]["renders"],
        "target": RSS_TARGET_MIB,
        "growth_exponent": rss.get("growth_exponent"),
        "met": at_target <= RSS_TARGET_MIB and rss.get("growth_exponent", 0.0) < 1.0,
    }
    lost = [run for run in runs if run.get("node_removed")]
    if lost:
        judged["node_lost_mid_run"] = {
            "runs": len(lost),
            "met": all(
                run["counts"]["failed"] == 0
                and run["outputs_published"] == run["catalog"]["renders"]
                and run["chunks_rendered_twice"] == 0
                for run in lost
            ),
        }
    return judged
