"""The warm driver (cli/warm_driver.py) runs a command line's command in a fork of a process
that has imported everything: with the command line's streams, folder and environment, its
exit code and error line, its signals, and never stale code or an environment it did not
import with. Each test talks to a real warm driver process over its socket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from facefusion_ray.cli.launch import runs_here
from facefusion_ray.cli.warm_protocol import code_fingerprint

# The command line's side, in a process of its own so that its streams are real descriptors:
# exit 97 when the warm driver did not take the command.
NOT_TAKEN = 97
CLIENT = (
    "import sys; from facefusion_ray.cli.launch import hand_over; "
    f"code = hand_over(sys.argv[1], sys.argv[2:]); sys.exit({NOT_TAKEN} if code is None else code)"
)
START_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="module")
def warm_driver() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    # Unix socket paths must stay short.
    folder = Path(tempfile.mkdtemp(prefix="wd-", dir="/tmp"))
    path = folder / "driver.sock"
    command = [sys.executable, "-m", "facefusion_ray.cli.warm_driver"]
    command += ["--socket", str(path), "--parent", str(os.getpid())]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not path.exists():
            assert process.poll() is None, "the warm driver ended while starting"
            assert time.monotonic() < deadline, "the warm driver did not start"
            time.sleep(0.1)
        yield process, str(path)
    finally:
        process.terminate()
        process.wait(30)
        path.unlink(missing_ok=True)
        folder.rmdir()


def hand_over(
    driver: str,
    *argv: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    nice: int | None = None,
) -> subprocess.Popen[str]:
    prefix = ["nice", "-n", str(nice)] if nice is not None else []
    return subprocess.Popen(
        [*prefix, sys.executable, "-c", CLIENT, driver, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
    )


def children_of(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(word) for word in text.split()]


def wait_for_child(pid: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while not children_of(pid):
        assert time.monotonic() < deadline, "the warm driver started no command"
        time.sleep(0.05)
    return children_of(pid)[0]


def test_a_command_runs_in_the_warm_driver_as_in_its_own_process(
    warm_driver: tuple[subprocess.Popen[bytes], str], sample_media
) -> None:
    _, driver = warm_driver
    folder = sample_media.target_video.parent
    name = sample_media.target_video.name
    # A path relative to the command line's folder, which the warm driver does not share.
    warm = hand_over(driver, "probe", name, cwd=folder)
    beside = hand_over(driver, "probe", name, cwd=folder)  # two commands at once
    out, err = warm.communicate(timeout=120)
    assert warm.returncode == 0, err
    assert beside.communicate(timeout=120)[0] == out and beside.returncode == 0
    own = subprocess.run(
        [sys.executable, "-m", "facefusion_ray.cli.main", "probe", name],
        capture_output=True,
        text=True,
        cwd=folder,
        check=True,
    )
    assert json.loads(out) == json.loads(own.stdout)


def test_a_failing_command_gives_its_error_line_and_exit_code(
    warm_driver: tuple[subprocess.Popen[bytes], str], tmp_path: Path
) -> None:
    _, driver = warm_driver
    missing = tmp_path / "missing.mp4"
    failed = hand_over(driver, "probe", str(missing))
    out, err = failed.communicate(timeout=120)
    assert failed.returncode == 1
    assert out == ""
    assert err.splitlines() == [f"facefusion-ray: error: file not found: {missing}"]

    usage = hand_over(driver, "swap", "--no-such-option")
    _, err = usage.communicate(timeout=120)
    assert usage.returncode == 2 and "usage: facefusion-ray swap" in err


def test_an_environment_read_at_import_that_differs_is_refused(
    warm_driver: tuple[subprocess.Popen[bytes], str], sample_media
) -> None:
    _, driver = warm_driver
    target = str(sample_media.target_video)
    refused = hand_over(driver, "probe", target, env={**os.environ, "RAY_WARM_DRIVER_TEST": "1"})
    out, _ = refused.communicate(timeout=120)
    assert refused.returncode == NOT_TAKEN and out == ""
    # Variables this project reads when it runs go to the command as they are.
    taken = hand_over(driver, "probe", target, env={**os.environ, "FACEFUSION_RAY_X": "1"})
    taken.communicate(timeout=120)
    assert taken.returncode == 0


def test_the_code_fingerprint_follows_every_python_file(tmp_path: Path) -> None:
    package = tmp_path / "package"
    (package / "inner").mkdir(parents=True)
    module = package / "inner" / "module.py"
    module.write_text("A = 1\n")
    (package / "notes.txt").write_text("not code")
    before = code_fingerprint(package)
    assert code_fingerprint(package) == before
    (package / "notes.txt").write_text("still not code")
    assert code_fingerprint(package) == before
    module.write_text("A = 22\n")
    assert code_fingerprint(package) != before
    edited = code_fingerprint(package)
    os.utime(module, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert code_fingerprint(package) != edited


def test_signals_reach_the_command_and_a_killed_command_line_takes_it_along(
    warm_driver: tuple[subprocess.Popen[bytes], str], sample_media, tmp_path: Path
) -> None:
    process, driver = warm_driver
    swap = (
        "swap",
        *("--source", str(sample_media.source_tom_hanks)),
        *("--target", str(sample_media.target_video)),
        "--sequential",
        "--no-progress",
        *("--work-store", str(tmp_path / "work")),
    )
    # Under `nice`: the command runs as nicely as its command line.
    interrupted = hand_over(driver, *swap, "--output", str(tmp_path / "a.mp4"), nice=5)
    command = wait_for_child(process.pid)
    wanted = os.getpriority(os.PRIO_PROCESS, 0) + 5
    deadline = time.monotonic() + 10
    while os.getpriority(os.PRIO_PROCESS, command) != wanted:
        assert time.monotonic() < deadline, "the command does not run as nicely"
        time.sleep(0.05)
    time.sleep(1.0)
    interrupted.send_signal(signal.SIGINT)
    _, err = interrupted.communicate(timeout=120)
    assert interrupted.returncode == 130, err
    assert "facefusion-ray: interrupted" in err
    assert not (tmp_path / "a.mp4").exists()

    killed = hand_over(driver, *swap, "--output", str(tmp_path / "b.mp4"))
    child = wait_for_child(process.pid)
    killed.kill()
    killed.communicate(timeout=30)
    deadline = time.monotonic() + 30
    while child in children_of(process.pid):
        assert time.monotonic() < deadline, "the command outlived its command line"
        time.sleep(0.1)
    assert not (tmp_path / "b.mp4").exists()


def test_only_commands_that_manage_the_kept_ray_run_in_their_own_process() -> None:
    # `ray stop` in a fork of the warm driver would end its own parent.
    assert runs_here(["ray", "stop"]) and runs_here(["-v", "ray", "status"])
    assert not runs_here(["-v", "swap", "--source", "ray"])
    assert not runs_here(["probe", "ray"]) and not runs_here([])
