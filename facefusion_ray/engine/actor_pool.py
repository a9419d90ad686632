"""How a job gets its render actors: its own, ended with it, or warm ones that outlive it in a
Ray that keeps them (found by name, created only where missing)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ray
from ray.actor import ActorHandle

from facefusion_ray.engine.job_options import JobOptions
from facefusion_ray.engine.render_actor import RenderActor
from facefusion_ray.engine.warm_actors import (
    WARM_NAMESPACE,
    actor_name,
    pool_key,
    reserved,
    retire_for_room,
    warm_actor_names,
    warm_idle_seconds,
)
from facefusion_ray.inference.execution import actor_resources
from facefusion_ray.pipeline.model_plan import ModelPlan

logger = logging.getLogger(__name__)

# A job's own actors are named per job, so operators (and tests) can find them in the cluster.
RENDER_ACTOR_PREFIX = "facefusion-ray-render-"


@dataclass(frozen=True)
class ActorPool:
    make_actor: Callable[[int], ActorHandle]
    workers: int
    # The actors outlive the job (the scheduler must not end them).
    kept: bool
    retired: int = 0


def actor_pool(options: JobOptions, plans: Sequence[ModelPlan]) -> ActorPool:
    """Warm actors when the Ray keeps idle actors (`facefusion-ray ray start`), else the job's
    own; `plans` are the models the pool is started for."""
    renderer: Any = ray.remote(RenderActor)
    resources = actor_resources(options.execution, options.threads_per_worker)
    arguments = (options.execution, options.threads_per_worker)
    idle_seconds = warm_idle_seconds()
    if idle_seconds is None:
        job_name = f"{RENDER_ACTOR_PREFIX}{uuid.uuid4().hex[:8]}"

        def own_actor(number: int) -> ActorHandle:
            options_ = renderer.options(name=f"{job_name}-{number}", max_restarts=0, **resources)
            return options_.remote(*arguments)

        return ActorPool(own_actor, options.workers, kept=False)
    key = pool_key(options.execution, options.threads_per_worker, plans)
    workers = workers_that_fit(options.workers, reserved(resources))
    present = set(warm_actor_names())
    missing = sum(1 for number in range(workers) if actor_name(key, number) not in present)
    needed = {name: amount * missing for name, amount in reserved(resources).items()}
    retired = retire_for_room(key, needed) if missing else []

    def warm_actor(number: int) -> ActorHandle:
        options_ = renderer.options(
            name=actor_name(key, number),
            namespace=WARM_NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            max_restarts=0,
            **resources,
        )
        return options_.remote(*arguments, idle_seconds)

    return ActorPool(warm_actor, workers, kept=True, retired=len(retired))


def workers_that_fit(workers: int, each: dict[str, float]) -> int:
    """A kept Ray is one machine of a fixed size: more workers than it holds would only wait
    to be placed (and hold up the job's start), so the pool is cut to what fits."""
    totals = ray.cluster_resources()
    fit = min(
        (int(totals.get(name, 0.0) // amount) for name, amount in each.items() if amount > 0),
        default=workers,
    )
    if fit < workers:
        logger.warning("the kept Ray has room for %d of the %d workers asked for", fit, workers)
    return max(1, min(workers, fit))
