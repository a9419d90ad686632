"""`facefusion-ray ab` and `facefusion-ray batch`: jobs of many renders over one actor pool."""

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from facefusion_ray.cli.job_arguments import add_job_options, storage_options_from
from facefusion_ray.cli.swap_options import add_swap_options, settings_from

if TYPE_CHECKING:
    from facefusion_ray.engine.ab import AbResult
    from facefusion_ray.engine.job_report import JobReport

logger = logging.getLogger(__name__)

EXIT_RENDER_FAILED = 1


def add_ab_arguments(parser: argparse.ArgumentParser) -> None:
    """What `ab` (and the ab_compare Ray job) take: target, sources, folder, swap options."""
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


def add_batch_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    ab = commands.add_parser(
        "ab", help="render one target with each of several sources and compare them"
    )
    add_ab_arguments(ab)

    batch = commands.add_parser("batch", help="render a catalog described by a YAML spec")
    batch.add_argument("spec", type=Path, help="batch spec (YAML): targets, sources, output")
    batch.add_argument(
        "--report", help="run report JSON, a path or s3:// URL (default: the spec's 'report')"
    )
    batch.add_argument("--address", help="join an existing Ray cluster instead of a local one")
    batch.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    batch.add_argument("--work-store", metavar="URL", help="as for swap")
    batch.add_argument("--force", action="store_true", help="render even up-to-date outputs")


def ab_from_args(args: argparse.Namespace, address: str | None) -> "AbResult":
    """Run the A/B the parsed `ab` options describe; writes `--report` when given."""
    from facefusion_ray.engine.ab import run_ab
    from facefusion_ray.engine.driver import job_options_for
    from facefusion_ray.engine.job_report import write_job_report

    settings = settings_from(args)
    options = job_options_for(
        settings,
        address,
        not args.no_progress,
        args.work_store,
        storage_options_from(args),
        args.force,
    )
    result = run_ab(args.target, args.source, args.output_dir, settings, options)
    if args.report is not None:
        write_job_report(result.job, args.report)
    return result


def print_ab_result(result: "AbResult") -> int:
    print(result.job.summary())
    print(f"contact sheet: {result.sheet}")
    if result.face_sheet is not None:
        print(f"face sheet: {result.face_sheet}")
    print(f"report: {result.report}")
    return EXIT_RENDER_FAILED if result.job.failed else 0


def run_ab_command(args: argparse.Namespace) -> int:
    return print_ab_result(ab_from_args(args, args.address))


def batch_from_args(
    args: argparse.Namespace, address: str | None
) -> tuple["JobReport", str | Path | None]:
    """Run the batch spec the parsed options name; returns the job and where its report went."""
    from facefusion_ray.cli.batch_spec import job_options_for_spec, load_batch_spec
    from facefusion_ray.engine.job import run_job
    from facefusion_ray.engine.job_report import publish_job_report

    spec = load_batch_spec(args.spec)
    options = job_options_for_spec(spec, address, args.work_store, not args.no_progress, args.force)
    job = run_job(spec.renders, options)
    report = args.report or spec.report
    if report is not None:
        publish_job_report(job, report, spec.storage_options)
    return job, report


def run_batch_command(args: argparse.Namespace) -> int:
    job, _ = batch_from_args(args, args.address)
    print(job.summary())
    for render in job.failed:
        print(f"facefusion-ray: error: {render.name}: {render.error}", file=sys.stderr)
    return EXIT_RENDER_FAILED if job.failed else 0
