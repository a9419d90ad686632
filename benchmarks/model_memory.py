"""Peak memory of a render with models at FaceFusion's published costs (issue 16, part 3).

A new user's path: a FaceFusion model folder (inswapper_128 and arcface_w600k_r50 stand-ins at
their published costs, `benchmarks/published_costs.py`) imported into a model store, then

    facefusion-ray swap --face-swapper-model inswapper_128 --workers 2 ...

on the first 12 frames of the 720p sample. Recorded: each process's peak resident memory (the
driver and every actor, from the report), their sum (the whole job), and the target: every
actor at most the swapper file's size plus 800 MB.
"""

from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.measure import cli_command, job_arguments, run_reported, run_timed, shown
from benchmarks.published_costs import PublishedCostModels, build_in_subprocess

SCENARIO = "published_costs_memory_2_workers"
TARGET = "720p_12_frames"
WORKERS = 2
# Per actor, beyond the swapper file itself.
ACTOR_ALLOWANCE_BYTES = 800 * 10**6


@dataclass(frozen=True)
class PublishedCostStore:
    url: str
    models: PublishedCostModels
    commands: list[str]


def build_published_cost_store(folder: Path) -> PublishedCostStore:
    models = build_in_subprocess(folder / "facefusion")
    store = str(folder / "store")
    commands = [
        cli_command("models", "pull", "yunet", "--store", store),
        cli_command("models", "import", "--from-facefusion", str(models.folder), "--store", store),
    ]
    for command in commands:
        run_timed(command)
    return PublishedCostStore(store, models, [shown(command) for command in commands])


def memory_command(
    store: PublishedCostStore, source: Path, target: Path, folder: Path
) -> list[str]:
    return cli_command(
        "swap",
        "--source", str(source),
        "--target", str(target),
        "--output", str(folder / f"{SCENARIO}.mp4"),
        "--face-swapper-model", "inswapper_128",
        "--model-store", store.url,
        "--no-analysis-cache",
        *job_arguments(WORKERS, folder / f"{SCENARIO}.json", folder / "work-store"),
    )  # fmt: skip


def run_memory_scenario(
    store: PublishedCostStore, source: Path, target: Path, folder: Path
) -> dict[str, object]:
    command = memory_command(store, source, target, folder)
    wall, report = run_reported(command, folder / f"{SCENARIO}.json")
    (folder / f"{SCENARIO}.mp4").unlink()
    peaks = {str(name): int(value) for name, value in report["peak_memory_bytes"].items()}
    return {
        "command": shown(command),
        "wall_seconds": round(wall, 2),
        "frames": report["frames_total"],
        "faces_swapped": report["faces_swapped"],
        "models": asdict(store.models) | {"folder": None},
        "peak_memory_mb": {name: round(value / 1e6) for name, value in peaks.items()},
        "whole_job_peak_mb": round(sum(peaks.values()) / 1e6),
        "model_calls": report["model_calls"],
    }


def actor_memory_target(result: dict[str, object]) -> dict[str, object]:
    """Every actor's peak at most the swapper file's size plus 800 MB."""
    models = result["models"]
    peaks = result["peak_memory_mb"]
    assert isinstance(models, dict) and isinstance(peaks, dict)
    limit = round((int(models["swapper_bytes"]) + ACTOR_ALLOWANCE_BYTES) / 1e6)
    actors = {name: value for name, value in peaks.items() if name.startswith("actor_")}
    worst = max(actors.values())
    return {"worst_actor_mb": worst, "target_mb": limit, "met": worst <= limit}
