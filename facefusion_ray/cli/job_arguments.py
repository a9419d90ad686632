"""Arguments of every command that runs a job: its report, the Ray to join, the work store,
and the fsspec options of the stores it reads and writes."""

from __future__ import annotations

import argparse
from pathlib import Path

from facefusion_ray.storage import parse_storage_options


def add_job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report", type=Path, help="write the run report as JSON here")
    parser.add_argument(
        "--address",
        help="join this Ray cluster (auto: the one on this machine; default: $RAY_ADDRESS, "
        "else start a local Ray)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--work-store",
        metavar="URL",
        help="where finished segments wait for assembly and resume: a folder or s3://... "
        "shared by all nodes (default: $FACEFUSION_RAY_WORK_STORE or the user cache)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="render again even when the output was already rendered from the same inputs",
    )
    add_storage_option_argument(
        parser, "s3:// targets, outputs, the analysis cache and the work store"
    )


def add_storage_option_argument(parser: argparse.ArgumentParser, applies_to: str) -> None:
    """`--storage-option KEY=VALUE`, repeatable, for the stores named by `applies_to`."""
    parser.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"fsspec option for {applies_to}, repeatable; dotted keys fill nested arguments, "
        "e.g. client_kwargs.endpoint_url=http://127.0.0.1:8333",
    )


def storage_options_from(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    return tuple(parse_storage_options(args.storage_option).items())
