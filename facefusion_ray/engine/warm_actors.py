"""Render actors that outlive their job, in a Ray that asks for them (one kept by
`facefusion-ray ray start`), so the next job finds them placed and their sessions open.

A warm actor is named by what it was built with: the package version and its code, the
execution config, the thread count and the models (id and SHA-256) of the job that created
it. A job with the same of all of these takes it over; any difference gives other names, so a
reused actor never serves stale code or models. Each actor exits by itself once idle for the
Ray's idle limit, and dies with the Ray.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import Any

import ray
from ray.experimental.internal_kv import _internal_kv_del, _internal_kv_get, _internal_kv_put

import facefusion_ray
from facefusion_ray.inference.execution import ExecutionConfig
from facefusion_ray.pipeline.model_plan import ModelPlan

logger = logging.getLogger(__name__)

WARM_NAMESPACE = "facefusion-ray-warm"
WARM_ACTOR_PREFIX = "render-"
# Where a Ray's keeper says how long idle actors may stay (Ray's own key-value store).
_KV_NAMESPACE = "facefusion-ray"
_KV_IDLE_SECONDS = "warm_actor_idle_seconds"
# An actor of another pool idle this long may be retired to make room for this job's actors (a
# job's actors are never idle between its chunks: each has the next one queued).
RETIRE_AFTER_IDLE_SECONDS = 1.0
# How long a job waits for a foreign actor to say whether it is idle (a busy one is left alone).
_IDLE_QUESTION_TIMEOUT_SECONDS = 2.0


@cache
def code_fingerprint() -> str:
    """SHA-256 of the package's source files: an edited checkout is other code."""
    digest = hashlib.sha256()
    package = Path(facefusion_ray.__file__).parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def package_version() -> str:
    try:
        return importlib.metadata.version("facefusion-ray")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def pool_key(execution: ExecutionConfig, threads: int, plans: Iterable[ModelPlan]) -> str:
    """What an actor was built with, hashed: actors of equal keys are interchangeable."""
    models = sorted({(model.model_id, model.sha256) for plan in plans for model in plan.models})
    identity = {
        "version": package_version(),
        "code": code_fingerprint(),
        "execution": {name: str(value) for name, value in asdict(execution).items()},
        "threads": threads,
        "models": models,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def actor_name(key: str, number: int) -> str:
    return f"{WARM_ACTOR_PREFIX}{key}-{number}"


def key_of(name: str) -> str | None:
    """The pool key in a warm actor's name; None for other names."""
    if not name.startswith(WARM_ACTOR_PREFIX):
        return None
    return name[len(WARM_ACTOR_PREFIX) :].rsplit("-", 1)[0]


def publish_idle_seconds(seconds: float) -> None:
    """Said by the Ray's keeper: jobs keep their actors warm this long after their last chunk."""
    _internal_kv_put(_KV_IDLE_SECONDS, str(seconds), namespace=_KV_NAMESPACE)


def warm_idle_seconds() -> float | None:
    """How long this Ray keeps idle actors, None when it keeps none (any Ray not kept)."""
    value = _internal_kv_get(_KV_IDLE_SECONDS, namespace=_KV_NAMESPACE)
    return float(value) if value else None


def stop_keeping_actors() -> list[str]:
    """This Ray keeps no idle actors from now on, and the warm ones end; returns their names."""
    _internal_kv_del(_KV_IDLE_SECONDS, namespace=_KV_NAMESPACE)
    names = warm_actor_names()
    for name in names:
        # One that ended by itself meanwhile is no longer found.
        with contextlib.suppress(ValueError):
            ray.kill(ray.get_actor(name, namespace=WARM_NAMESPACE))
    return names


def warm_actor_names() -> list[str]:
    return sorted(
        entry["name"]
        for entry in ray.util.list_named_actors(all_namespaces=True)
        if entry["namespace"] == WARM_NAMESPACE and key_of(entry["name"]) is not None
    )


def reserved(resources: Mapping[str, Any]) -> dict[str, float]:
    """`actor_resources` options under the names Ray's resource totals use."""
    names = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}
    return {names[option]: float(amount) for option, amount in resources.items() if amount}


def retire_for_room(key: str, needed: Mapping[str, float]) -> list[str]:
    """Kill idle actors of other pools while the free resources cannot place `needed`
    (e.g. {"CPU": 2}); returns their names. Actors at work are left alone."""
    short = _shortfall(needed)
    if not short:
        return []
    foreign = [name for name in warm_actor_names() if key_of(name) != key]
    handles = {name: ray.get_actor(name, namespace=WARM_NAMESPACE) for name in foreign}
    questions = {handle.idle_state.remote(): name for name, handle in handles.items()}
    answered, _ = ray.wait(
        list(questions), num_returns=len(questions), timeout=_IDLE_QUESTION_TIMEOUT_SECONDS
    )
    retired: list[str] = []
    for reference in answered:
        if not short:
            break
        name = questions[reference]
        try:
            idle_seconds, resources = ray.get(reference)
        except ray.exceptions.RayActorError:
            continue
        if idle_seconds < RETIRE_AFTER_IDLE_SECONDS:
            # Just finished a job's last chunk, most likely; the same job would have queued
            # the next one already.
            time.sleep(RETIRE_AFTER_IDLE_SECONDS - idle_seconds)
        ray.kill(handles[name])
        retired.append(name)
        short = {
            resource: amount - resources.get(resource, 0.0)
            for resource, amount in short.items()
            if amount - resources.get(resource, 0.0) > 0
        }
    if retired:
        logger.info("retired %d idle workers of other models to make room", len(retired))
    return retired


def _shortfall(needed: Mapping[str, float]) -> dict[str, float]:
    available = ray.available_resources()
    return {
        resource: amount - available.get(resource, 0.0)
        for resource, amount in needed.items()
        if amount > available.get(resource, 0.0)
    }
