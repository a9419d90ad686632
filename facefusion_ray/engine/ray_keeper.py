"""The process behind a kept Ray (`python -m facefusion_ray.engine.ray_keeper`, started by
`facefusion-ray ray start`): it starts a local Ray, says how long idle actors stay warm, records
itself for later jobs, and ends the Ray (which shares its fate) on SIGTERM, when the Ray dies,
or when no job has been connected for its idle limit."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import ray

from facefusion_ray.engine.kept_ray import AUTH_MODE_VARIABLE, KeptRay, write_record
from facefusion_ray.engine.warm_actors import publish_idle_seconds

logger = logging.getLogger("facefusion_ray.ray_keeper")

# How often the keeper looks for connected jobs (at most; shorter for short idle limits).
POLL_SECONDS = 10.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__name__}")
    parser.add_argument("--cpus", type=int, required=True)
    parser.add_argument("--idle-minutes", type=float, required=True)
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    idle_seconds = args.idle_minutes * 60
    ray.init(
        address="local",
        num_cpus=args.cpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
        # The workers' output goes to the jobs that use them, not into the keeper's log.
        log_to_driver=False,
    )
    # After ray.init, which installs a handler of its own: `ray stop` ends the Ray in order.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
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
        ray.shutdown()
    return 0


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
