"""Reproducible end-to-end benchmarks of the `facefusion-ray` CLI on the sample media.

Every scenario runs the real CLI in fresh processes (so peak memory is per run) and the
results, with the machine, versions, the exact commands and the targets met, are written as
JSON.
Usage: python -m benchmarks.run [--quick | --only NAME [NAME ...]] [--trim-frames N] [--list]
       [--output FILE]
"""

import argparse
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path

from benchmarks.ab_scaling import AB_SOURCE_COUNTS, AbScaling, ab_scenario_name
from benchmarks.cache_read import CACHE_READ_SCENARIOS, run_cache_read
from benchmarks.facefusion_overhead import FACEFUSION_OVERHEAD, FaceFusionOverhead
from benchmarks.model_memory import SCENARIO as MEMORY_SCENARIO
from benchmarks.model_memory import TARGET as MEMORY_TARGET
from benchmarks.model_memory import run_memory_scenario
from benchmarks.swap_scenarios import SCENARIOS, run_swap_scenario
from benchmarks.targets import targets_summary
from benchmarks.workspace import Workspace

__all__ = ["build_parser", "main", "selected_scenarios", "targets_summary"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
QUICK_SCENARIOS = (
    "720p_cache_cold",
    "720p_cache_warm_new_source",
    "720p_engine_2_workers",
    "720p_sequential_baseline",
)
SCENARIO_NAMES = (
    *(scenario.name for scenario in SCENARIOS),
    *(ab_scenario_name(count) for count in AB_SOURCE_COUNTS),
    *CACHE_READ_SCENARIOS,
    FACEFUSION_OVERHEAD,
    MEMORY_SCENARIO,
)
PREREQUISITES = {scenario.name: scenario.after for scenario in SCENARIOS if scenario.after}


def machine_description() -> dict[str, object]:
    cpu_model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_bytes / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            package: metadata.version(package)
            for package in ("facefusion-ray", "ray", "onnxruntime", "numpy", "imageio-ffmpeg")
        },
    }


def selected_scenarios(only: Sequence[str] | None, quick: bool) -> list[str]:
    """The scenarios to run in their canonical order, with the ones they need run first."""
    if only is None:
        return [name for name in SCENARIO_NAMES if not quick or name in QUICK_SCENARIOS]
    unknown = [name for name in only if name not in SCENARIO_NAMES]
    if unknown:
        raise ValueError(f"unknown scenario(s): {', '.join(unknown)}")
    chosen = set(only)
    for name in only:
        while name in PREREQUISITES:
            name = PREREQUISITES[name]
            chosen.add(name)
    return [name for name in SCENARIO_NAMES if name in chosen]


def scenario_runners(workspace: Workspace) -> dict[str, Callable[[], dict[str, object]]]:
    runners: dict[str, Callable[[], dict[str, object]]] = {
        scenario.name: partial(run_swap_scenario, scenario, workspace) for scenario in SCENARIOS
    }
    ab = AbScaling(workspace)
    for count in AB_SOURCE_COUNTS:
        runners[ab_scenario_name(count)] = partial(ab.run, count)
    for name, selector_mode in CACHE_READ_SCENARIOS.items():
        runners[name] = partial(run_cache_read, workspace, selector_mode)
    runners[FACEFUSION_OVERHEAD] = FaceFusionOverhead(workspace).run
    runners[MEMORY_SCENARIO] = lambda: run_memory_scenario(
        workspace.published_cost_store(),
        workspace.source("tom_hanks"),
        workspace.target(MEMORY_TARGET),
        workspace.folder,
    )
    return runners


def headline(result: dict[str, object]) -> str:
    if "skipped" in result:
        return f"skipped: {result['skipped']}"
    if "ratio_to_facefusion" in result:
        return f"{result['ratio_to_facefusion']}x FaceFusion's frames/s"
    if "ab_share_of_separate" in result:
        return f"A/B takes {result['ab_share_of_separate']} of the separate renders' time"
    if "whole_job_peak_mb" in result:
        return f"peak memory {result['peak_memory_mb']} MB, {result['whole_job_peak_mb']} MB in all"
    if "stores" in result:
        return f"analysis {result['analysis_seconds']} s, reads {result['stores']}"
    return f"{result['frames_per_second']} frames/s"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument(
        "--quick",
        action="store_true",
        help=f"only the 720p scenarios: {', '.join(QUICK_SCENARIOS)}",
    )
    choice.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="run these scenarios (and those they need first); see --list",
    )
    parser.add_argument(
        "--trim-frames",
        type=int,
        metavar="N",
        help="cut the A/B and neural targets to N frames: checks the benchmark runs, "
        "its figures are not comparable",
    )
    parser.add_argument("--list", action="store_true", help="print the scenario names and exit")
    parser.add_argument("--output", type=Path, help="result JSON (default benchmarks/results/)")
    return parser


def main() -> int:
    parser = build_parser()
    args = parser.parse_args()
    if args.list:
        print("\n".join(SCENARIO_NAMES))
        return 0
    try:
        chosen = selected_scenarios(args.only, args.quick)
    except ValueError as error:
        parser.error(str(error))
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="facefusion-ray-bench-") as temporary:
        workspace = Workspace(Path(temporary), args.trim_frames)
        runners = scenario_runners(workspace)
        for name in chosen:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            results[name] = runners[name]()
            print(f"  {headline(results[name])}", file=sys.stderr, flush=True)
        setup = workspace.setup()
    document = {
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([sys.executable, "-m", "benchmarks.run", *sys.argv[1:]]),
        "machine": machine_description(),
        "trim_frames": args.trim_frames,
        "setup": setup,
        "scenarios": results,
        "targets": targets_summary(results),
    }
    output = args.output or RESULTS_DIR / f"{document['recorded_at'][:10]}-latest.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document["targets"], indent=2))
    print(f"results: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
