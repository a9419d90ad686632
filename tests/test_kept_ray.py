"""`facefusion-ray ray start | status | stop`: a kept Ray that a later `swap` joins, that stops on
request or when idle, and that leaves nothing running. Each test keeps its Ray in a temp folder
of its own (RAY_TMPDIR), away from any other Ray on the machine, and always stops it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from facefusion_ray.engine.kept_ray import (
    KeptRay,
    find_kept_ray,
    keeper_alive,
    ray_temp_folder,
    record_path,
    write_record,
)
from facefusion_ray.engine.ray_runtime import ray_start_of_this_environment

# As users run it: a command hands itself to the kept Ray's warm driver when one runs.
CLI = [sys.executable, "-m", "facefusion_ray"]


@pytest.fixture
def ray_folder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # Ray's unix sockets live under its temp folder, whose path must stay short.
    root = Path(tempfile.mkdtemp(prefix="rk-", dir="/tmp"))
    monkeypatch.setenv("RAY_TMPDIR", str(root))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    try:
        yield root
    finally:
        kept = find_kept_ray()
        if kept is not None:
            cli("ray", "stop")
        left = leftover_processes(root)
        shutil.rmtree(root, ignore_errors=True)
        assert left == "", "processes of the kept Ray were left running"


def leftover_processes(root: Path, wait_seconds: float = 15.0) -> str:
    """Pids of processes whose command line names `root`, once they had time to end."""
    deadline = time.monotonic() + wait_seconds
    while True:
        found = subprocess.run(["pgrep", "-f", str(root)], capture_output=True, text=True)
        if not found.stdout.strip() or time.monotonic() > deadline:
            return found.stdout.strip()
        time.sleep(0.5)


def cli(*words: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*CLI, *words], capture_output=True, text=True, timeout=timeout, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_a_swap_joins_the_kept_ray_until_it_is_stopped(
    ray_folder: Path, sample_media, short_group_clip: Path, tmp_path: Path
) -> None:
    assert json.loads(cli("ray", "status").stdout) == {"running": False}
    started = cli("ray", "start", "--cpus", "1", "--idle-minutes", "5").stdout
    assert "kept Ray started" in started and "facefusion-ray ray stop" in started
    assert "already running" in cli("ray", "start").stdout
    report = tmp_path / "report.json"
    cli(
        "swap",
        "--source",
        str(sample_media.source_tom_hanks),
        "--target",
        str(short_group_clip),
        "--output",
        str(tmp_path / "out.mp4"),
        "--workers",
        "1",
        "--no-progress",
        "--report",
        str(report),
        "--work-store",
        str(tmp_path / "work"),
    )
    startup = json.loads(report.read_text())["startup"]
    assert startup["ray"] == "kept" and startup["actors_kept"]
    assert startup["actors_created"] == 1
    # The job's driver was a fork of the warm driver, which `ray start` waited for.
    assert startup["driver"] == "warm"
    status = json.loads(cli("ray", "status").stdout)
    assert status["running"] and status["cpus"] == 1 and len(status["warm_workers"]) == 1
    assert Path(status["driver_socket"]).is_socket()

    assert "stopped the kept Ray" in cli("ray", "stop").stdout
    assert not keeper_alive(status["pid"])
    assert not Path(status["driver_socket"]).exists()
    assert json.loads(cli("ray", "status").stdout) == {"running": False}
    assert "no kept Ray" in cli("ray", "stop").stdout


def test_a_kept_ray_without_jobs_stops_by_itself(ray_folder: Path) -> None:
    cli("ray", "start", "--cpus", "1", "--idle-minutes", "0.02")
    kept = find_kept_ray()
    assert kept is not None
    deadline = time.monotonic() + 60
    while keeper_alive(kept.pid):
        assert time.monotonic() < deadline, "the idle kept Ray is still running"
        time.sleep(0.5)
    assert find_kept_ray() is None


def test_a_stale_record_or_cluster_file_is_not_joined(ray_folder: Path) -> None:
    (ray_folder / "ray").mkdir()
    # What a head that died without cleaning up leaves: the address of a dead GCS.
    (ray_folder / "ray" / "ray_current_cluster").write_text("192.0.2.1:6379")
    assert ray_start_of_this_environment() is None
    # A keeper that is gone: no process has a pid above Linux's largest.
    write_record(
        KeptRay("192.0.2.1:6379", 2**22 + 1, sys.executable, 1, 5.0, 0.0, ""), record_path()
    )
    assert find_kept_ray() is None
    assert not record_path().exists()


@pytest.mark.parametrize(
    "variables",
    [{}, {"TMPDIR": "/var/tmp"}, {"RAY_TMPDIR": "/tmp/rt", "TMPDIR": "/var/tmp"}],
)
def test_the_ray_temp_folder_is_rays_own_choice(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    from ray._common.utils import get_default_ray_temp_dir

    for name in ("RAY_TMPDIR", "TMPDIR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert ray_temp_folder() == Path(get_default_ray_temp_dir())
