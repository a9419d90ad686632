"""Starting or joining Ray for a job."""

import logging
import os

import ray

logger = logging.getLogger(__name__)

# Set by `ray job submit` (and by users) to the cluster a driver should join.
RAY_ADDRESS_VARIABLE = "RAY_ADDRESS"


def cluster_to_join(address: str | None) -> str | None:
    """The cluster named by `address`, else by $RAY_ADDRESS; None means start a local Ray."""
    return address or os.environ.get(RAY_ADDRESS_VARIABLE) or None


def ensure_ray(address: str | None, num_cpus: int) -> bool:
    """Connects to `address` (or $RAY_ADDRESS) or starts a local Ray; returns True when this
    call started it."""
    if ray.is_initialized():
        return False
    joined = cluster_to_join(address)
    if joined:
        logger.info("joining Ray cluster at %s", joined)
        ray.init(address=joined, logging_level=logging.WARNING, log_to_driver=True)
    else:
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
    return True
