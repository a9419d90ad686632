"""Render a catalog: every target of a batch spec with every source, once.

    python -m ray_jobs.render_catalog SPEC [--report FILE_OR_URL] [--address auto]
        [--work-store URL] [--force] [--no-progress]

Outputs already published from the same inputs are up to date and not rendered again.
Exit status 1 when a render failed (the others are still finished) or the spec is wrong.
"""

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from facefusion_ray.cli.job_commands import batch_from_args
from facefusion_ray.errors import FaceFusionRayError
from ray_jobs.job_setup import (
    EXIT_FAILED,
    EXIT_OK,
    add_run_options,
    configure_logging,
)

logger = logging.getLogger("ray_jobs.render_catalog")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ray_jobs.render_catalog",
        description="Render every target x source of a batch spec (YAML).",
    )
    parser.add_argument("spec", type=Path, help="batch spec (YAML): targets, sources, output")
    parser.add_argument(
        "--report",
        help="job report JSON, a path or s3:// URL; a .txt summary goes beside it "
        "(default: the spec's 'report')",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="render again even when an output was already rendered from the same inputs",
    )
    add_run_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        job, report = batch_from_args(args, args.address)
    except FaceFusionRayError as error:
        print(f"render_catalog: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(job.summary())
    if report is not None:
        print(f"report: {report}")
    for render in job.failed:
        logger.error("%s: %s", render.name, render.error)
    return EXIT_FAILED if job.failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
