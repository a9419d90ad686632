"""A/B comparison: one target rendered with each of several sources, compared side by side.

    python -m ray_jobs.ab_compare --target VIDEO --source A.png --source B.png \
        --output-dir DIR [swap options] [--address auto] [--work-store URL]

DIR gets one video per source, contact_sheet.png, report.html and ab_report.json. The
target is analysed once for all sources. Exit status 1 when a render failed.
"""

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from facefusion_ray.cli_options import (
    add_job_options,
    add_swap_options,
    settings_from,
    storage_options_from,
)
from facefusion_ray.engine.ab import run_ab
from facefusion_ray.engine.driver import job_options_for
from facefusion_ray.engine.job_report import write_job_report
from facefusion_ray.errors import FaceFusionRayError
from ray_jobs.job_setup import EXIT_FAILED, EXIT_OK, configure_logging, default_address

logger = logging.getLogger("ray_jobs.ab_compare")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ray_jobs.ab_compare",
        description="Render one target with each source and compare them.",
    )
    parser.add_argument("--target", required=True, help="target video (path or s3:// URL)")
    parser.add_argument(
        "--source",
        action="append",
        required=True,
        help="source face image, path or s3:// URL (repeatable)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        required=True,
        help="local folder: one video per source, contact_sheet.png, report.html, ab_report.json",
    )
    add_swap_options(parser)
    add_job_options(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.epilog = (
        "--address defaults to $RAY_ADDRESS, which `ray job submit` sets; without it a local "
        "Ray is started."
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        settings = settings_from(args)
        options = job_options_for(
            settings,
            args.address or default_address(),
            not args.no_progress,
            args.work_store,
            storage_options_from(args),
            args.force,
        )
        result = run_ab(args.target, args.source, args.output_dir, settings, options)
        if args.report is not None:
            write_job_report(result.job, args.report)
    except FaceFusionRayError as error:
        print(f"ab_compare: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(result.job.summary())
    print(f"contact sheet: {result.sheet}")
    print(f"report: {result.report}")
    for render in result.job.failed:
        logger.error("%s: %s", render.name, render.error)
    return EXIT_FAILED if result.job.failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
