"""Running the real CLI in a fresh process, timed, and the figures read from a swap report."""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.process_tree_cpu import ACTOR_PROCESSES, RAY, ProcessTreeCpu

# Lines of a failed command's stderr shown in the error.
STDERR_TAIL_LINES = 20


class BenchmarkCommandFailed(RuntimeError):
    pass


def cli_command(*arguments: str) -> list[str]:
    """`facefusion-ray ARGUMENTS` as this interpreter runs it."""
    return [sys.executable, "-m", "facefusion_ray", *arguments]


def shown(command: Sequence[str]) -> str:
    return " ".join(command)


def run_timed(command: Sequence[str]) -> float:
    """Wall seconds of `command`, run with no input; its output is kept only for errors."""
    return run_sampled(command)[0]


def installed_environment() -> dict[str, str]:
    """This process's environment, with Python keeping its bytecode caches as an installed
    program's does: under a sandbox's PYTHONDONTWRITEBYTECODE=1 every command compiles the
    project's modules again, about 0.2 s of each job's start."""
    environment = dict(os.environ)
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    return environment


def run_sampled(command: Sequence[str]) -> tuple[float, dict[str, float]]:
    """Wall seconds of `command` and the CPU seconds of its process tree by kind (sampled)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        list(command),
        env=installed_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    tree = ProcessTreeCpu(process.pid)
    tree.start()
    try:
        _, stderr = process.communicate()
    finally:
        tree.stop()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        tail = "\n".join(stderr.splitlines()[-STDERR_TAIL_LINES:])
        raise BenchmarkCommandFailed(f"{shown(command)} exited with {process.returncode}:\n{tail}")
    return wall, tree.by_kind()


def job_arguments(workers: int, report_path: Path, work_store: Path) -> list[str]:
    """The options every benchmarked job shares: its pool, its JSON report, a work store of
    the benchmark's own, and no progress bar."""
    return [
        "--workers", str(workers),
        "--report", str(report_path),
        "--work-store", str(work_store),
        "--no-progress",
    ]  # fmt: skip


def run_reported(command: Sequence[str], report_path: Path) -> tuple[float, dict[str, Any]]:
    """Wall seconds of `command` and the JSON report it wrote."""
    wall = run_timed(command)
    return wall, json.loads(report_path.read_text())


def cpu_by_process_kind(
    report: Mapping[str, object], tree: Mapping[str, float]
) -> dict[str, float]:
    """CPU seconds of one render by process kind: the report's exact figures (the driver and
    its ffmpeg children, the frame loops, ffmpeg decoding and encoding) and, sampled from the
    process tree, the actor processes outside their frame loops (start-up: imports, sessions;
    Ray's threads) and Ray's own processes. Reports written before the figures existed give
    the sampled tree alone."""
    exact = report.get("cpu_seconds")
    figures = {kind: round(as_float(value), 2) for kind, value in _mapping(exact).items()}
    actors = tree.get(ACTOR_PROCESSES)
    if actors is not None and "frame_loop" in figures:
        figures["actor_outside_frame_loop"] = round(actors - figures["frame_loop"], 2)
    figures["ray"] = round(tree.get(RAY, 0.0), 2)
    figures["total"] = round(sum(figures.values()), 2)
    return figures


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, dict) else {}


def swap_figures(report: Mapping[str, object], wall: float) -> dict[str, object]:
    """Speed, start-up, stage shares and peak memory of one render from its report."""
    frames = _int(report["frames_total"])
    workers = _int(report["workers"])
    startup = as_float(report["startup_seconds"])
    stages = _float_map(report["stage_seconds"])
    busy = wall * workers
    # Every measured stage is work (codecs, inference, swap, cache and segment I/O); the rest
    # of the workers' time (start-up, scheduling, waiting) is overhead.
    overhead = busy - sum(stages.values())
    return {
        "wall_seconds": round(wall, 2),
        "frames": frames,
        "frames_per_second": round(frames / wall, 2),
        "startup_seconds": startup,
        "frames_per_second_after_startup": round(frames / (wall - startup), 2),
        "faces_swapped": report["faces_swapped"],
        "workers": workers,
        "cache": report["cache"],
        "chunks": report["chunks"],
        "model_calls": report["model_calls"],
        "model_seconds": report["model_seconds"],
        "stage_share_of_worker_time": {
            stage: round(seconds / busy, 3) for stage, seconds in sorted(stages.items())
        },
        "outside_work_stages_share": round(overhead / busy, 3),
        "peak_memory_mib": {
            name: round(value / 2**20, 1)
            for name, value in _float_map(report["peak_memory_bytes"]).items()
        },
    }


def _int(value: object) -> int:
    assert isinstance(value, int), value
    return value


def as_float(value: object) -> float:
    assert isinstance(value, int | float), value
    return float(value)


def _float_map(value: object) -> dict[str, float]:
    assert isinstance(value, dict), value
    return {str(key): as_float(item) for key, item in value.items()}


@contextlib.contextmanager
def private_ray_folder(prefix: str) -> Iterator[Path]:
    """A Ray temp folder of the benchmark's own (RAY_TMPDIR), so a kept Ray it starts is away
    from any Ray the user runs; removed afterwards."""
    # Ray's unix sockets live under its temp folder, whose path must stay short.
    folder = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.environ["RAY_TMPDIR"] = folder
    os.environ.pop("RAY_ADDRESS", None)
    try:
        yield Path(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def emit_json(result: Mapping[str, object], output: Path | None) -> None:
    """Print the result, and write it to `output` too when one is given."""
    text = json.dumps(result, indent=2)
    print(text)
    if output:
        output.write_text(text + "\n")
