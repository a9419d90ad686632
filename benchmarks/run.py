"""Reproducible end-to-end benchmarks of `facefusion-ray swap` on the sample media.

Every scenario runs the real CLI in a fresh process (so peak memory is per run) and the
result, with the machine, versions and the exact commands, is written as JSON.
Usage: python -m benchmarks.run [--quick] [--output FILE]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from facefusion_ray.media.ffmpeg_tool import run_ffmpeg
from facefusion_ray.sample_media import build_sample_media

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Stages doing real work: codecs, model inference and the swap's own pixel processing.
# Everything else in the workers' time (start-up, scheduling, waiting) counts as overhead.
WORK_STAGES = ("decode", "detect", "swap", "encode", "assemble")


@dataclass(frozen=True)
class Scenario:
    name: str
    target: str  # key into the prepared targets
    workers: int
    sequential: bool = False
    # Scenarios without the cache analyse every frame, so each is a cold run; the cold/warm
    # pair shares one cache, and the warm run swaps in another source.
    analysis_cache: bool = False
    source: str = "tom_hanks"


SCENARIOS = (
    Scenario("720p_cache_cold", "720p", 2, analysis_cache=True),
    Scenario("720p_cache_warm_new_source", "720p", 2, analysis_cache=True, source="astronaut"),
    Scenario("720p_engine_2_workers", "720p", 2),
    Scenario("720p_engine_1_worker", "720p", 1),
    Scenario("720p_sequential_baseline", "720p", 1, sequential=True),
    Scenario("1080p_engine_2_workers", "1080p", 2),
    Scenario("1080p_sequential_baseline", "1080p", 1, sequential=True),
    Scenario("720p_x4_length_engine_2_workers", "720p_x4", 2),
)
QUICK_SCENARIOS = (
    "720p_cache_cold",
    "720p_cache_warm_new_source",
    "720p_engine_2_workers",
    "720p_sequential_baseline",
)


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


def run_ffmpeg_quietly(*args: str) -> None:
    run_ffmpeg(["-loglevel", "error", "-y", *args], "cannot prepare a benchmark target")


def prepare_targets(folder: Path) -> dict[str, Path]:
    sample = build_sample_media().target_video
    upscaled = folder / "sample_1080p.mp4"
    run_ffmpeg_quietly(
        "-i",
        str(sample),
        "-vf",
        "scale=1920:1080",
        "-c:v",
        "libx264",
        "-crf",
        "18",
        "-preset",
        "veryfast",
        "-c:a",
        "copy",
        str(upscaled),
    )
    listing = folder / "x4.txt"
    listing.write_text("".join(f"file '{sample}'\n" for _ in range(4)))
    four_times = folder / "sample_x4.mp4"
    run_ffmpeg_quietly(
        "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(four_times)
    )
    return {"720p": sample, "1080p": upscaled, "720p_x4": four_times}


def run_scenario(scenario: Scenario, target: Path, folder: Path) -> dict[str, object]:
    media = build_sample_media()
    source = media.source_astronaut if scenario.source == "astronaut" else media.source_tom_hanks
    output = folder / f"{scenario.name}.mp4"
    report_path = folder / f"{scenario.name}.json"
    command = [
        sys.executable, "-m", "facefusion_ray", "swap",
        "--source", str(source), "--target", str(target),
        "--output", str(output), "--workers", str(scenario.workers),
        "--report", str(report_path), "--no-progress",
    ]  # fmt: skip
    if scenario.sequential:
        command.append("--sequential")
    if scenario.analysis_cache:
        command += ["--analysis-cache", str(folder / "analysis-cache")]
    else:
        command.append("--no-analysis-cache")
    started = time.perf_counter()
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL, capture_output=True)
    wall = time.perf_counter() - started
    report = json.loads(report_path.read_text())
    output.unlink()
    stages = report["stage_seconds"]
    busy = wall * report["workers"]
    overhead = busy - sum(stages.get(stage, 0.0) for stage in WORK_STAGES)
    return {
        "command": " ".join(command),
        "wall_seconds": round(wall, 2),
        "frames": report["frames_total"],
        "frames_per_second": round(report["frames_total"] / wall, 2),
        "startup_seconds": report["startup_seconds"],
        "frames_per_second_after_startup": round(
            report["frames_total"] / (wall - report["startup_seconds"]), 2
        ),
        "faces_swapped": report["faces_swapped"],
        "workers": report["workers"],
        "cache": report["cache"],
        "chunks": report["chunks"],
        "stage_share_of_worker_time": {
            stage: round(seconds / busy, 3) for stage, seconds in sorted(stages.items())
        },
        "outside_work_stages_share": round(overhead / busy, 3),
        "peak_memory_mib": {
            name: round(value / 2**20, 1) for name, value in report["peak_memory_bytes"].items()
        },
    }


def targets_summary(results: dict[str, dict[str, object]]) -> dict[str, object]:
    def fps(name: str) -> float | None:
        entry = results.get(name)
        return float(entry["frames_per_second"]) if entry else None  # type: ignore[arg-type]

    summary: dict[str, object] = {}
    engine, baseline = fps("720p_engine_2_workers"), fps("720p_sequential_baseline")
    if engine and baseline:
        steady = float(results["720p_engine_2_workers"]["frames_per_second_after_startup"])  # type: ignore[arg-type]
        summary["engine_2_workers_vs_baseline"] = {
            "ratio": round(engine / baseline, 2),
            "ratio_after_engine_startup": round(steady / baseline, 2),
            "target": 1.5,
            "met": engine / baseline >= 1.5,
        }
    one = fps("720p_engine_1_worker")
    if engine and one:
        summary["two_workers_vs_one"] = {
            "ratio": round(engine / one, 2),
            "target": 1.8,
            "met": engine / one >= 1.8,
        }
    short, long = (
        results.get("720p_engine_2_workers"),
        results.get("720p_x4_length_engine_2_workers"),
    )
    if short and long:

        def peak(entry: dict[str, object]) -> float:
            memory = entry["peak_memory_mib"]
            assert isinstance(memory, dict)
            return max(memory.values())

        growth = peak(long) / peak(short) - 1.0
        summary["peak_rss_growth_4x_length"] = {
            "growth": round(growth, 3),
            "target": 0.10,
            "met": growth <= 0.10,
        }
    if engine:
        share = results["720p_engine_2_workers"]["outside_work_stages_share"]
        summary["outside_work_stages"] = {
            "share": share,
            "target": 0.15,
            "met": float(share) <= 0.15,
        }  # type: ignore[arg-type]
    cold, warm = results.get("720p_cache_cold"), results.get("720p_cache_warm_new_source")
    if cold and warm:
        share = float(warm["wall_seconds"]) / float(cold["wall_seconds"])  # type: ignore[arg-type]
        summary["warm_cache_rerender_vs_cold"] = {
            "share": round(share, 3),
            "target": 0.25,
            "met": share <= 0.25,
        }
    for missing, needs in (
        ("ab_8_sources_vs_8_renders", "issue 6 (A/B)"),
        ("standin_10_gflop_swapper", "issue 4 (neural swappers)"),
    ):
        summary[missing] = {"measured": False, "needs": needs}
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="only the 720p engine and baseline")
    parser.add_argument("--output", type=Path, help="result JSON (default benchmarks/results/)")
    args = parser.parse_args()
    chosen = [s for s in SCENARIOS if not args.quick or s.name in QUICK_SCENARIOS]
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="facefusion-ray-bench-") as temporary:
        folder = Path(temporary)
        targets = prepare_targets(folder)
        for scenario in chosen:
            print(f"running {scenario.name} ...", file=sys.stderr, flush=True)
            results[scenario.name] = run_scenario(scenario, targets[scenario.target], folder)
            print(f"  {results[scenario.name]['frames_per_second']} frames/s", file=sys.stderr)
    document = {
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([sys.executable, "-m", "benchmarks.run", *sys.argv[1:]]),
        "machine": machine_description(),
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
