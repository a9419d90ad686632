"""Start-up per job, alternating: a job that starts its own Ray, the first job in a kept Ray
(`facefusion-ray ray start`: it creates the actors) and the second (it takes them over).

    .venv/bin/python -m benchmarks.startup [--rounds 3] [--workers 2] [--output FILE]

Each job is `facefusion-ray swap` of Tom Hanks onto the 10 s 720p sample in a fresh process,
`--no-analysis-cache`. The kept Ray lives in a temporary Ray folder (RAY_TMPDIR) of its own,
away from any Ray the user runs, and is stopped after each round. Prints and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.measure import (
    BenchmarkCommandFailed,
    cli_command,
    emit_json,
    job_arguments,
    private_ray_folder,
    run_reported,
    run_timed,
)
from facefusion_ray.sample_media import build_sample_media

T = TypeVar("T")
KINDS = ("own_ray", "kept_ray_first_job", "kept_ray_second_job")
STARTUP_PARTS = ("ray_seconds", "actors_seconds", "sessions_seconds", "seconds")


def swap_job(folder: Path, name: str, workers: int) -> dict[str, Any]:
    media = build_sample_media()
    report_path = folder / f"{name}.json"
    command = cli_command(
        "swap",
        "--source", str(media.source_tom_hanks),
        "--target", str(media.target_video),
        "--output", str(folder / f"{name}.mp4"),
        "--no-analysis-cache",
        *job_arguments(workers, report_path, folder / "work"),
    )  # fmt: skip
    wall, report = run_reported(command, report_path)
    startup = report["startup"]
    return {
        "wall_seconds": round(wall, 2),
        "job_seconds": report["seconds"],
        "startup_seconds_ray_and_actors": report["startup_seconds"],
        **{part: startup[part] for part in STARTUP_PARTS},
        "ray": startup["ray"],
        "actors_reused": startup["actors_reused"],
        "sessions_opened": startup["sessions_opened"],
    }


def retried(run: Callable[[], T], tries: int = 3) -> T:
    """On a machine so busy that Ray does not come up within its 30 s, try again."""
    for attempt in range(tries):
        try:
            return run()
        except BenchmarkCommandFailed as error:
            if attempt == tries - 1 or "timed out during startup" not in str(error):
                raise
            print(f"Ray did not come up in time, trying again: {error}".splitlines()[0])
    raise AssertionError("unreachable")


def one_round(folder: Path, number: int, workers: int) -> dict[str, dict[str, Any]]:
    runs = {"own_ray": retried(lambda: swap_job(folder, f"own-{number}", workers))}
    start = cli_command("ray", "start", "--cpus", str(workers), "--idle-minutes", "10")
    retried(lambda: run_timed(start))
    try:
        runs["kept_ray_first_job"] = swap_job(folder, f"first-{number}", workers)
        runs["kept_ray_second_job"] = swap_job(folder, f"second-{number}", workers)
    finally:
        run_timed(cli_command("ray", "stop"))
    return runs


def summary(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, float]]:
    medians: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        medians[kind] = {
            figure: round(statistics.median(run[kind][figure] for run in rounds), 3)
            for figure in ("wall_seconds", "job_seconds", *STARTUP_PARTS)
        }
    return medians


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", type=Path, help="write the JSON here too")
    args = parser.parse_args()
    rounds: list[dict[str, dict[str, Any]]] = []
    failures: list[str] = []
    load_at_start = os.getloadavg()
    with (
        private_ray_folder("fr-startup-"),
        tempfile.TemporaryDirectory(prefix="facefusion-ray-startup-") as scratch,
    ):
        for number in range(args.rounds):
            try:
                rounds.append(one_round(Path(scratch), number, args.workers))
            except BenchmarkCommandFailed as error:
                # On a machine too busy for Ray to start in time: said, and not counted.
                failures.append(str(error).splitlines()[-1])
                print(failures[-1], flush=True)
                continue
            print(json.dumps(rounds[-1]), flush=True)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "workers": args.workers,
        "rounds": rounds,
        "failed_rounds": failures,
        "medians": summary(rounds) if rounds else {},
    }
    emit_json(result, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
