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

from facefusion_ray.cli.job_commands import ab_from_args, add_ab_arguments, print_ab_result
from facefusion_ray.errors import FaceFusionRayError
from ray_jobs.job_setup import EXIT_FAILED, configure_logging, default_address

logger = logging.getLogger("ray_jobs.ab_compare")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ray_jobs.ab_compare",
        description="Render one target with each source and compare them.",
    )
    add_ab_arguments(parser)
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
        result = ab_from_args(args, args.address or default_address())
    except FaceFusionRayError as error:
        print(f"ab_compare: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    for render in result.job.failed:
        logger.error("%s: %s", render.name, render.error)
    return print_ab_result(result)


if __name__ == "__main__":
    sys.exit(main())
