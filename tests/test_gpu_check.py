"""`benchmarks/gpu_check.py` (issue 16, part 4) without a GPU: its dry run prints a plan whose
commands the real CLI parser accepts and that covers every path the check is for, and the check
itself stops at once, in one line, where no GPU is found."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time

import pytest

from benchmarks.gpu_check import RUNS, table
from tests.doc_commands import DocCommand, problems


def dry_run_commands() -> dict[str, list[str]]:
    printed = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", "--dry-run", "--work", "WORK"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    commands = {}
    for line in printed.splitlines():
        name, _, command = line.partition(": ")
        if name in {run.name for run in RUNS}:
            commands[name] = shlex.split(command)
    return commands


def test_the_dry_run_plan_parses_with_the_real_cli_and_covers_every_path() -> None:
    commands = dry_run_commands()
    assert sorted(commands) == sorted(run.name for run in RUNS)
    for name, words in commands.items():
        assert words[:3] == ["python", "-m", "facefusion_ray"]
        assert problems(DocCommand(name, "facefusion-ray", words[3:])) == []

    def values(flag: str) -> set[str]:
        return {words[words.index(flag) + 1] for words in commands.values() if flag in words}

    assert values("--execution-provider") == {"cuda", "tensorrt"}
    assert values("--precision") == {"fp16", "fp32"}
    assert values("--workers") == {"1", "2", "4"}
    assert values("--gpu-fraction") == {"0.5", "0.25"}
    assert values("--output-video-encoder") == {"libx264", "h264_nvenc"}
    assert values("--decode-hwaccel") == {"none", "cuda"}
    assert values("--target") == {"WORK/target.mp4", "WORK/group.png"}


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has nvidia-smi")
def test_without_a_gpu_the_check_stops_at_once_in_one_line() -> None:
    started = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check"], capture_output=True, text=True, timeout=60
    )
    assert time.perf_counter() - started < 10
    assert finished.returncode == 2
    assert finished.stderr.count("\n") == 1 and "no NVIDIA GPU found" in finished.stderr


def test_the_table_reads_speed_memory_and_placement_from_the_reports() -> None:
    report = {
        "seconds": 10.0,
        "startup_seconds": 2.0,
        "frames_total": 300,
        "faces_swapped": 1800,
        "model_providers": {
            "inswapper_128_fp16": ["CUDAExecutionProvider fp16"],
            "yunet": ["CUDAExecutionProvider fp16"],
        },
        "notes": [],
        "peak_memory_bytes": {"driver": 300_000_000, "actor_0": 1_200_000_000},
    }
    rows = [{"run": RUNS[0], "report": report, "gpu_mib": 2100}]
    rows.append({"run": RUNS[2], "error": "TensorrtExecutionProvider cannot start"})
    lines = table(rows).splitlines()
    expected = "cuda_fp16 37.5 225.0 2100 1200 CUDAExecutionProvider fp16"
    assert lines[1].split() == expected.split()
    assert lines[2].startswith("tensorrt_fp16") and "FAILED: TensorrtExecutionProvider" in lines[2]
