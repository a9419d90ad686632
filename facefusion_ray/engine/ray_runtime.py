"""Starting or joining Ray for a job.

A job joins, in this order: the cluster it is told to (`--address`, then $RAY_ADDRESS); the
Ray kept by `facefusion-ray ray start` for this Python environment; the Ray of the last
`ray start --head` on this machine when it runs this same Python environment (so its actors
import this code); else it starts a private local Ray that ends with it.
"""

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import ray

from facefusion_ray.engine.kept_ray import find_kept_ray, ray_temp_folder

logger = logging.getLogger(__name__)

# Set by `ray job submit` (and by users) to the cluster a driver should join.
RAY_ADDRESS_VARIABLE = "RAY_ADDRESS"

# A Ray found on this machine may be slow to answer when the machine is busy: tried twice.
JOIN_ATTEMPTS = 2

STARTED = "started"  # a private local Ray, ended with the job
JOINED = "joined"  # a cluster named by the job, or the last `ray start` of this environment
KEPT = "kept"  # the Ray kept by `facefusion-ray ray start`
ALREADY_CONNECTED = "already connected"  # the process was connected before the job


@dataclass(frozen=True)
class RayConnection:
    how: str
    # The job ran ray.init and so ends with ray.shutdown (which, for a joined Ray, only
    # disconnects).
    initialized: bool
    seconds: float


def cluster_to_join(address: str | None) -> str | None:
    """The cluster named by `address`, else by $RAY_ADDRESS; None means start a local Ray."""
    return address or os.environ.get(RAY_ADDRESS_VARIABLE) or None


def ensure_ray(address: str | None, num_cpus: int) -> bool:
    """Connects to `address` (or $RAY_ADDRESS) or starts a local Ray; returns True when this
    call started it."""
    return connect_ray(address, num_cpus).initialized


def connect_ray(address: str | None, num_cpus: int) -> RayConnection:
    """Joins the Ray this job should use, or starts a local one with `num_cpus`."""
    started = time.perf_counter()
    if ray.is_initialized():
        return RayConnection(ALREADY_CONNECTED, False, 0.0)
    named = cluster_to_join(address)
    if named:
        logger.info("joining Ray at %s", named)
        ray.init(address=named, logging_level=logging.WARNING, log_to_driver=True)
        return RayConnection(JOINED, True, _since(started))
    how, found = found_on_this_machine()
    for attempt in range(JOIN_ATTEMPTS if found else 0):
        logger.info("joining the %s Ray at %s", how, found)
        try:
            ray.init(address=found, logging_level=logging.WARNING, log_to_driver=True)
            return RayConnection(how, True, _since(started))
        except ConnectionError as error:
            ray.shutdown()
            # Found, not named: a Ray that does not answer is no reason to fail the job.
            if attempt == JOIN_ATTEMPTS - 1:
                logger.warning("the Ray at %s did not answer (%s): starting one", found, error)
    logger.info("starting a local Ray with %d CPUs", num_cpus)
    # "local", not None: with None Ray joins the cluster named in its temp folder's
    # ray_current_cluster file, which a crashed head leaves behind (then init fails).
    ray.init(
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=True,
    )
    return RayConnection(STARTED, True, _since(started))


def found_on_this_machine() -> tuple[str, str | None]:
    """The kept Ray of this environment, else the last `ray start` of this environment."""
    kept = find_kept_ray()
    if kept is not None:
        kept.join_as_started()
        return KEPT, kept.address
    return JOINED, ray_start_of_this_environment()


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def ray_start_of_this_environment() -> str | None:
    """The address in Ray's `ray_current_cluster` file (the last `ray start --head`) when a
    raylet serving it runs on this machine with workers of this Python environment."""
    try:
        address = (ray_temp_folder() / "ray_current_cluster").read_text().strip()
    except OSError:
        return None
    if not address:
        return None
    import psutil  # a dependency of Ray's

    bin_folder = Path(sys.executable).parent
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if not command or not Path(command[0]).name.startswith("raylet"):
            continue
        words = " ".join(command).split()
        if f"--gcs-address={address}" not in words:
            continue
        python = next(
            (
                word.split("=", 1)[1]
                for word in words
                if word.startswith("--python_worker_command=")
            ),
            "",
        )
        if python and Path(python).parent == bin_folder:
            return address
    return None
