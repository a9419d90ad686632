"""Issue 19's targets as a studio meets them: jobs on a machine whose Ray is already running.

    .venv/bin/python -m benchmarks.kept_ray_jobs [--rounds 3] [--output FILE]

`facefusion-ray ray start` once, one job to create the warm actors (not counted), then rounds
of, alternating:
- `sequential`: the 10 s 720p sample with `--sequential` (no Ray);
- `engine`: the same with `--workers 2`, a later job in the kept Ray;
- `cold`: a 20 s 720p clip (the sample twice) with `--workers 2` and a fresh analysis cache;
- `warm`: the same clip with another source, reading the cache `cold` filled.
Every job is a fresh `facefusion-ray swap` process, timed from outside (start-up included).
The kept Ray lives in a Ray folder of its own and is stopped at the end. Prints and writes JSON
with the medians and the targets: warm at most 0.75 of cold, the engine at least as fast as
sequential, and start-up under 1 s per job.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.measure import (
    cli_command,
    emit_json,
    job_arguments,
    private_ray_folder,
    run_reported,
    run_timed,
)
from benchmarks.run import machine_description
from benchmarks.workspace import run_ffmpeg_quietly
from facefusion_ray.sample_media import build_sample_media

KINDS = ("sequential", "engine", "cold", "warm")
WARM_VS_COLD_TARGET = 0.75
STARTUP_TARGET_SECONDS = 1.0


class Jobs:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.media = build_sample_media()
        self.clip_20s = folder / "sample_x2.mp4"
        listing = folder / "x2.txt"
        listing.write_text("".join(f"file '{self.media.target_video}'\n" for _ in range(2)))
        run_ffmpeg_quietly(
            "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(self.clip_20s)
        )  # fmt: skip

    def run(self, name: str, kind: str, cache: Path | None = None) -> dict[str, Any]:
        """One job of `kind`; `cache` is the analysis cache of a cold/warm pair."""
        target = self.clip_20s if kind in ("cold", "warm") else self.media.target_video
        source = self.media.source_astronaut if kind == "warm" else self.media.source_tom_hanks
        report_path = self.folder / f"{name}.json"
        command = cli_command(
            "swap", "--source", str(source), "--target", str(target),
            "--output", str(self.folder / f"{name}.mp4"),
            *job_arguments(2, report_path, self.folder / "work"),
        )  # fmt: skip
        command += ["--sequential"] if kind == "sequential" else []
        command += ["--analysis-cache", str(cache)] if cache else ["--no-analysis-cache"]
        wall, report = run_reported(command, report_path)
        (self.folder / f"{name}.mp4").unlink()
        return {
            "wall_seconds": round(wall, 2),
            "frames": report["frames_total"],
            "frames_per_second": round(report["frames_total"] / wall, 2),
            "startup_seconds": report.get("startup_seconds"),
            "actors_reused": (report.get("startup") or {}).get("actors_reused"),
            # "warm" when the job forked from the kept Ray's warm driver (all but the first).
            "driver": (report.get("startup") or {}).get("driver"),
            "cpu_seconds": report.get("cpu_seconds"),
        }


def one_round(jobs: Jobs, number: int) -> dict[str, dict[str, Any]]:
    cache = jobs.folder / f"cache-{number}"
    return {
        "sequential": jobs.run(f"sequential-{number}", "sequential"),
        "engine": jobs.run(f"engine-{number}", "engine"),
        "cold": jobs.run(f"cold-{number}", "cold", cache),
        "warm": jobs.run(f"warm-{number}", "warm", cache),
    }


def judged(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    medians = {
        kind: statistics.median(run[kind]["wall_seconds"] for run in rounds) for kind in KINDS
    }
    fps = {
        kind: statistics.median(run[kind]["frames_per_second"] for run in rounds) for kind in KINDS
    }
    startup = max(
        run[kind]["startup_seconds"] or 0.0 for run in rounds for kind in ("engine", "cold", "warm")
    )
    warm_vs_cold = medians["warm"] / medians["cold"]
    engine_vs_sequential = fps["engine"] / fps["sequential"]
    return {
        "median_wall_seconds": medians,
        "median_frames_per_second": fps,
        "targets": {
            "warm_rerender_vs_cold": {
                "figure": round(warm_vs_cold, 3),
                "target": f"<= {WARM_VS_COLD_TARGET}",
                "met": warm_vs_cold <= WARM_VS_COLD_TARGET,
            },
            "engine_vs_sequential": {
                "figure": round(engine_vs_sequential, 3),
                "target": ">= 1.0",
                "met": engine_vs_sequential >= 1.0,
            },
            "largest_startup_seconds_in_kept_ray": {
                "figure": startup,
                "target": f"< {STARTUP_TARGET_SECONDS}",
                "met": startup < STARTUP_TARGET_SECONDS,
            },
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kept_ray_jobs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, help="write the JSON here too")
    args = parser.parse_args()
    load_at_start = os.getloadavg()
    rounds: list[dict[str, dict[str, Any]]] = []
    with (
        private_ray_folder("fr-kept-"),
        tempfile.TemporaryDirectory(prefix="facefusion-ray-kept-") as scratch,
    ):
        jobs = Jobs(Path(scratch))
        run_timed(cli_command("ray", "start", "--cpus", "2", "--idle-minutes", "10"))
        try:
            jobs.run("first-job", "engine")  # creates the warm actors
            for number in range(args.rounds):
                rounds.append(one_round(jobs, number))
                print(json.dumps(rounds[-1]), flush=True)
        finally:
            run_timed(cli_command("ray", "stop"))
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine_description(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "rounds": rounds,
        **judged(rounds),
    }
    emit_json(result, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
