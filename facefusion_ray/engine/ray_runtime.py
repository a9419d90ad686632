"""Starting or joining Ray for a job."""

import logging

import ray

logger = logging.getLogger(__name__)


def ensure_ray(address: str | None, num_cpus: int) -> bool:
    """Connects to `address` or starts a local Ray; returns True when this call started it."""
    if ray.is_initialized():
        return False
    if address:
        logger.info("joining Ray cluster at %s", address)
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True)
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
