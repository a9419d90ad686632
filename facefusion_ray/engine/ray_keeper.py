"""The process behind a kept Ray (`python -m facefusion_ray.engine.ray_keeper`, started by
`facefusion-ray ray start`): it starts a local Ray and its warm driver, says how long idle
actors stay warm, records itself for later jobs, and ends the Ray (which shares its fate) on
SIGTERM, when the Ray dies, or when no job has been connected for its idle limit."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import ray

from facefusion_ray.engine.kept_ray import (
    AUTH_MODE_VARIABLE,
    KeptRay,
    exec_environment,
    write_record,
)
from facefusion_ray.engine.warm_actors import publish_idle_seconds

logger = logging.getLogger("facefusion_ray.ray_keeper")

# How often the keeper looks for connected jobs (at most; shorter for short idle limits).
POLL_SECONDS = 10.0
# How long the warm driver may take to import everything before jobs are told of it, and to
# end (it gives running commands 10 s after passing them SIGTERM).
WARM_DRIVER_START_SECONDS = 60.0
WARM_DRIVER_STOP_SECONDS = 20.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__name__}")
    parser.add_argument("--cpus", type=int, required=True)
    parser.add_argument("--idle-minutes", type=float, required=True)
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--warm-driver", help="the module of the warm driver to run beside Ray")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    idle_seconds = args.idle_minutes * 60
    # The warm driver imports while Ray starts.
    socket_path = args.record.with_suffix(".sock")
    warm_driver = start_warm_driver(args.warm_driver, socket_path) if args.warm_driver else None
    try:
        ray.init(
            address="local",
            num_cpus=args.cpus,
            include_dashboard=False,
            logging_level=logging.WARNING,
            # The workers' output goes to the jobs that use them, not into the keeper's log.
            log_to_driver=False,
        )
    except BaseException:
        stop_warm_driver(warm_driver)
        raise
    # After ray.init, which installs a handler of its own: `ray stop` ends the Ray in order.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        driver_socket = await_warm_driver(warm_driver, socket_path)
        publish_idle_seconds(idle_seconds)
        address = ray.get_runtime_context().gcs_address
        kept = KeptRay(
            address,
            os.getpid(),
            sys.executable,
            args.cpus,
            args.idle_minutes,
            time.time(),
            str(args.log),
            os.environ.get(AUTH_MODE_VARIABLE),
            driver_socket,
        )
        write_record(kept, args.record)
        logger.info(
            "kept Ray at %s with %d CPUs, idle limit %.1f min",
            address,
            args.cpus,
            args.idle_minutes,
        )
        wait_until_idle(idle_seconds)
    finally:
        _remove_own_record(args.record)
        stop_warm_driver(warm_driver)
        ray.shutdown()
    return 0


def start_warm_driver(module: str, path: Path) -> subprocess.Popen[bytes]:
    """The warm driver (cli/warm_driver.py) of this keeper, to take commands at `path` once it
    has imported everything; it starts with the environment the keeper was started with, and
    its messages go to the keeper's log."""
    path.unlink(missing_ok=True)  # a socket left by a keeper that was killed
    command = [sys.executable, "-m", module, "--socket", str(path), "--parent", str(os.getpid())]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, env=exec_environment())


def await_warm_driver(process: subprocess.Popen[bytes] | None, path: Path) -> str | None:
    """`path` once the warm driver listens there; None when there is none, or it ended or
    took too long (then every job imports its own driver)."""
    deadline = time.monotonic() + WARM_DRIVER_START_SECONDS
    while process is not None and time.monotonic() < deadline and process.poll() is None:
        if path.exists():
            return str(path)
        time.sleep(0.05)
    if process is not None:
        logger.warning("the warm driver did not start: every job imports its own driver")
    return None


def stop_warm_driver(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM: it passes the signal to running commands and reports their ends, then goes."""
    if process is None:
        return
    process.terminate()
    try:
        process.wait(WARM_DRIVER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until_idle(idle_seconds: float) -> None:
    """Returns once no other driver has been connected for `idle_seconds`, or the Ray is gone."""
    own_job = ray.get_runtime_context().get_job_id()
    last_busy = time.monotonic()
    while True:
        time.sleep(min(POLL_SECONDS, max(idle_seconds / 4, 0.5)))
        try:
            jobs = ray._private.state.jobs()
        except Exception as error:  # any failure to reach the GCS ends the keeper
            logger.warning("the Ray is gone (%s): stopping", error)
            return
        if any(not job["IsDead"] and job["JobID"] != own_job for job in jobs):
            last_busy = time.monotonic()
        elif time.monotonic() - last_busy >= idle_seconds:
            logger.info("no job for %.0f s: stopping the kept Ray", idle_seconds)
            return


def _exit_on_signal(number: int, frame: FrameType | None) -> None:
    logger.info("stopping the kept Ray (signal %d)", number)
    raise SystemExit(0)


def _remove_own_record(path: Path) -> None:
    """The record goes with the keeper, unless another keeper has replaced it since."""
    try:
        if f'"pid": {os.getpid()},' in path.read_text():
            path.unlink()
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
