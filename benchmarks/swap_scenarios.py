"""Scenarios of one `facefusion-ray swap` each: the engine, the sequential baseline, the analysis
cache, and the stand-in neural swapper."""

import json
from dataclasses import dataclass
from pathlib import Path

from benchmarks.measure import (
    cli_command,
    cpu_by_process_kind,
    job_arguments,
    run_sampled,
    shown,
    swap_figures,
)
from benchmarks.workspace import Workspace


@dataclass(frozen=True)
class Scenario:
    name: str
    target: str  # a Workspace target name
    workers: int
    sequential: bool = False
    # The analysis cache folder this run reads and fills, shared by the scenarios naming it;
    # None runs with --no-analysis-cache, so every frame is analysed (a cold run).
    analysis_cache: str | None = None
    source: str = "tom_hanks"
    # Swap with the stand-in ~10 GFLOP swapper from the benchmark's own model store.
    neural: bool = False
    threads_per_worker: int = 1
    # A scenario that must run first in the same invocation (it fills the cache this one reads).
    after: str | None = None
    # `reference` embeds every face, the analysis-heavy case where the cache saves the most.
    selector_mode: str = "many"


NEURAL_TARGET = "720p_30_frames"


def neural_pair(name: str, workers: int, sequential: bool = False) -> tuple[Scenario, Scenario]:
    """A cold run that fills a fresh cache, then a warm re-render of it with a new source."""
    cold = Scenario(
        f"{name}_cold", NEURAL_TARGET, workers, sequential, analysis_cache=name, neural=True
    )
    warm = Scenario(
        f"{name}_warm_new_source",
        NEURAL_TARGET,
        workers,
        sequential,
        analysis_cache=name,
        source="astronaut",
        neural=True,
        after=cold.name,
    )
    return cold, warm


SCENARIOS = (
    Scenario("720p_cache_cold", "720p", 2, analysis_cache="720p"),
    Scenario(
        "720p_cache_warm_new_source",
        "720p",
        2,
        analysis_cache="720p",
        source="astronaut",
        after="720p_cache_cold",
    ),
    Scenario(
        "720p_reference_cache_cold",
        "720p",
        2,
        analysis_cache="720p_reference",
        selector_mode="reference",
    ),
    Scenario(
        "720p_reference_cache_warm_new_source",
        "720p",
        2,
        analysis_cache="720p_reference",
        source="astronaut",
        after="720p_reference_cache_cold",
        selector_mode="reference",
    ),
    # The same pair in one process, frame by frame (no Ray, no start-up).
    Scenario(
        "720p_sequential_cache_cold",
        "720p",
        1,
        sequential=True,
        analysis_cache="720p_sequential",
    ),
    Scenario(
        "720p_sequential_cache_warm_new_source",
        "720p",
        1,
        sequential=True,
        analysis_cache="720p_sequential",
        source="astronaut",
        after="720p_sequential_cache_cold",
    ),
    Scenario("720p_engine_2_workers", "720p", 2),
    Scenario("720p_engine_1_worker", "720p", 1),
    Scenario("720p_sequential_baseline", "720p", 1, sequential=True),
    Scenario("1080p_engine_2_workers", "1080p", 2),
    Scenario("1080p_sequential_baseline", "1080p", 1, sequential=True),
    Scenario("720p_x4_length_engine_2_workers", "720p_x4", 2),
    *neural_pair("neural_10gflop_sequential_baseline", 1, sequential=True),
    *neural_pair("neural_10gflop_engine_1_worker", 1),
    *neural_pair("neural_10gflop_engine_2_workers", 2),
    # The baseline with both cores for ONNX Runtime: what one process can do on its own.
    Scenario(
        "neural_10gflop_sequential_2_threads",
        NEURAL_TARGET,
        1,
        sequential=True,
        analysis_cache="neural_10gflop_sequential_2_threads",
        neural=True,
        threads_per_worker=2,
    ),
)


def swap_command(scenario: Scenario, workspace: Workspace) -> list[str]:
    folder = workspace.folder
    command = cli_command(
        "swap",
        "--source", str(workspace.source(scenario.source)),
        "--target", str(workspace.target(scenario.target)),
        "--output", str(folder / f"{scenario.name}.mp4"),
        "--threads-per-worker", str(scenario.threads_per_worker),
        *job_arguments(scenario.workers, report_path(scenario, workspace), workspace.work_store),
    )  # fmt: skip
    if scenario.sequential:
        command.append("--sequential")
    if scenario.selector_mode != "many":
        command += ["--face-selector-mode", scenario.selector_mode]
    if scenario.analysis_cache is None:
        command.append("--no-analysis-cache")
    else:
        command += ["--analysis-cache", str(folder / f"analysis-cache-{scenario.analysis_cache}")]
    if scenario.neural:
        store = workspace.neural_store()
        command += ["--face-swapper-model", store.swapper_id, "--model-store", store.url]
    return command


def report_path(scenario: Scenario, workspace: Workspace) -> Path:
    return workspace.folder / f"{scenario.name}.json"


def run_swap_scenario(scenario: Scenario, workspace: Workspace) -> dict[str, object]:
    command = swap_command(scenario, workspace)
    wall, tree = run_sampled(command)
    report = json.loads(report_path(scenario, workspace).read_text())
    (workspace.folder / f"{scenario.name}.mp4").unlink()
    result: dict[str, object] = {"command": shown(command), **swap_figures(report, wall)}
    result["cpu_seconds_by_process_kind"] = cpu_by_process_kind(report, tree)
    result["cpu_seconds_sampled_tree"] = tree
    if scenario.neural:
        result["swapper"] = swapper_figures(report, workspace)
    return result


def swapper_figures(report: dict[str, object], workspace: Workspace) -> dict[str, object]:
    """Calls of the stand-in swapper, its cost, and the compute rate it ran at."""
    store = workspace.neural_store()
    calls = report["model_calls"]
    seconds = report["model_seconds"]
    assert isinstance(calls, dict) and isinstance(seconds, dict)
    count = int(calls.get(store.swapper_id, 0))
    busy = float(seconds.get(store.swapper_id, 0.0))
    gflop = count * store.swapper_gflops_per_call
    return {
        "model": store.swapper_id,
        "gflops_per_call": store.swapper_gflops_per_call,
        "calls": count,
        "seconds_summed_over_workers": round(busy, 2),
        "gflop_total": round(gflop, 1),
        "gflop_per_second_per_worker": round(gflop / busy, 1) if busy > 0 else None,
    }
