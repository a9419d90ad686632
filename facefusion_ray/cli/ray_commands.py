"""`facefusion-ray ray start | status | stop`: a local Ray kept between jobs, so a job after the
first joins it and takes over warm actors with their sessions instead of starting its own."""

from __future__ import annotations

import argparse
import json
import os
import time

WARM_DRIVER_MODULE = "facefusion_ray.cli.warm_driver"


def add_ray_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from facefusion_ray.engine.kept_ray import DEFAULT_IDLE_MINUTES

    kept = subparsers.add_parser(
        "ray", help="keep a local Ray (and warm workers) between jobs on this machine"
    )
    actions = kept.add_subparsers(dest="ray_command", required=True)
    start = actions.add_parser(
        "start",
        help="start a local Ray that later jobs of this environment join, and a warm driver "
        "their commands run in with their imports done",
    )
    start.add_argument(
        "--cpus",
        type=_positive_int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="CPUs the Ray offers to workers (default: all of this machine's)",
    )
    start.add_argument(
        "--idle-minutes",
        type=_positive_float,
        default=DEFAULT_IDLE_MINUTES,
        metavar="M",
        help="a warm worker exits after M minutes without work, and the Ray after M minutes "
        f"without a job (default {DEFAULT_IDLE_MINUTES:g})",
    )
    actions.add_parser("status", help="print the kept Ray and its warm workers as JSON")
    actions.add_parser("stop", help="stop the kept Ray and its warm workers")


def run_ray_command(args: argparse.Namespace) -> int:
    handlers = {"start": _run_start, "status": _run_status, "stop": _run_stop}
    return handlers[args.ray_command](args)


def _run_start(args: argparse.Namespace) -> int:
    from facefusion_ray.engine.kept_ray import start_kept_ray

    kept, started = start_kept_ray(args.cpus, args.idle_minutes, WARM_DRIVER_MODULE)
    what = "started" if started else "already running:"
    print(
        f"kept Ray {what} {kept.address}, {kept.cpus} CPUs, stops after "
        f"{kept.idle_minutes:g} idle minutes; `facefusion-ray ray stop` stops it now"
    )
    return 0


def _run_status(args: argparse.Namespace) -> int:
    from facefusion_ray.engine.kept_ray import find_kept_ray

    kept = find_kept_ray()
    if kept is None:
        print(json.dumps({"running": False}, indent=2))
        return 0
    status: dict[str, object] = {"running": True, **kept.to_dict()}
    status["up_seconds"] = round(time.time() - kept.started, 1)
    kept.join_as_started()
    status["warm_workers"] = _warm_workers(kept.address)
    print(json.dumps(status, indent=2))
    return 0


def _warm_workers(address: str) -> list[str] | None:
    import logging

    import ray

    from facefusion_ray.engine.warm_actors import warm_actor_names

    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except ConnectionError:
        return None  # its keeper runs, its Ray does not answer (yet)
    try:
        return warm_actor_names()
    finally:
        ray.shutdown()


def _run_stop(args: argparse.Namespace) -> int:
    from facefusion_ray.engine.kept_ray import stop_kept_ray

    kept = stop_kept_ray()
    if kept is None:
        print("no kept Ray runs for this environment")
    else:
        print(f"stopped the kept Ray at {kept.address} and its workers")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value
