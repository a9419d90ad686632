"""A scheduled run of a batch spec: render what is new or changed since the last run.

    python -m ray_jobs.nightly SPEC [--address auto] [--work-store URL] [--no-progress]

Outputs already published from the same content (targets, sources, models, options) are up
to date and cost nothing, so a run renders only new or changed work. Each run writes
`<nightly.report_dir>/nightly-YYYY-MM-DDTHHMMSSZ.json` and a `.md` summary beside it,
prunes the analysis cache to `nightly.cache_max_bytes` when the spec sets it, and keeps the
newest `nightly.keep_reports` reports. Exit status 1 when any render failed (the others are
still finished and reported), the cache could not be pruned, or the spec is wrong.
"""

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from facefusion_ray.cache.analysis_chunks import AnalysisCache
from facefusion_ray.cache.operations import prune
from facefusion_ray.cli.batch_spec import BatchSpec, job_options_for_spec, load_batch_spec
from facefusion_ray.engine.job import run_job
from facefusion_ray.errors import FaceFusionRayError
from facefusion_ray.storage.locations import output_exists
from ray_jobs.job_setup import (
    EXIT_FAILED,
    EXIT_OK,
    add_run_options,
    configure_logging,
    write_files,
)
from ray_jobs.nightly_report import CachePruning, NightlyRun, remove_old_reports

logger = logging.getLogger("ray_jobs.nightly")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ray_jobs.nightly",
        description="Render what is new or changed in a batch spec, write a dated run report, "
        "prune the analysis cache.",
    )
    parser.add_argument(
        "spec", type=Path, help="batch spec (YAML), optionally with a 'nightly' section"
    )
    add_run_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    started_at = datetime.now(UTC)
    try:
        spec = load_batch_spec(args.spec)
        job = run_job(
            spec.renders,
            job_options_for_spec(spec, args.address, args.work_store, not args.no_progress),
        )
        run = NightlyRun(str(args.spec), started_at, datetime.now(UTC), job, prune_cache(spec))
        locations = write_run_report(run, spec)
    except FaceFusionRayError as error:
        print(f"nightly: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(run.summary())
    print(f"run report: {locations[0]}")
    for render in job.failed:
        logger.error("%s: %s", render.name, render.error)
    return EXIT_OK if run.succeeded else EXIT_FAILED


def prune_cache(spec: BatchSpec) -> CachePruning | None:
    """Least recently used analysis chunks go until the cache fits `nightly.cache_max_bytes`."""
    max_bytes = spec.nightly.cache_max_bytes
    settings = spec.renders[0].settings if spec.renders else None
    if max_bytes is None or settings is None or not settings.use_analysis_cache:
        return None
    described = settings.analysis_cache or "the default analysis cache"
    try:
        cache = AnalysisCache(settings.analysis_cache, spec.storage_options)
        described = cache.describe()
        removed = prune(cache, max_bytes)
    except FaceFusionRayError as error:
        logger.error("cannot prune the analysis cache: %s", error)
        return CachePruning(described, max_bytes, error=str(error))
    pruning = CachePruning(
        described, max_bytes, len(removed), sum(entry.size_bytes for entry in removed)
    )
    logger.info(pruning.line())
    return pruning


def write_run_report(run: NightlyRun, spec: BatchSpec) -> list[str]:
    """The dated JSON and markdown reports; then only the newest `keep_reports` are kept."""
    folder, storage_options = spec.nightly.report_dir, spec.storage_options
    stem, attempt = run.file_stem(), 1
    # A second run within the same second must not replace the first one's report.
    while output_exists(_in_folder(folder, f"{stem}.json"), storage_options):
        attempt += 1
        stem = f"{run.file_stem()}-{attempt}"
    locations = write_files(
        {f"{stem}.json": run.to_json(), f"{stem}.md": run.to_markdown()},
        folder,
        storage_options,
    )
    if spec.nightly.keep_reports is not None:
        for removed in remove_old_reports(folder, spec.nightly.keep_reports, storage_options):
            logger.info("removed old run report %s", removed)
    return locations


def _in_folder(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}"


if __name__ == "__main__":
    sys.exit(main())
