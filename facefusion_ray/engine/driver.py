"""One render from the command line or a script: `run_swap` is a job of one render.

Ray is imported only when the render runs on it: `--sequential` never loads it.
"""

import logging
from collections.abc import Sequence
from pathlib import Path

from facefusion_ray.engine.job_options import JobOptions
from facefusion_ray.engine.job_report import FAILED
from facefusion_ray.errors import FaceFusionRayError
from facefusion_ray.pipeline.render_request import RenderRequest, check_output_is_not_an_input
from facefusion_ray.pipeline.sequential import run_sequential
from facefusion_ray.pipeline.swap_report import SwapReport, write_report
from facefusion_ray.settings import SwapSettings

logger = logging.getLogger(__name__)

__all__ = ["job_options_for", "run_swap"]


def job_options_for(
    settings: SwapSettings,
    address: str | None = None,
    show_progress: bool = True,
    work_store: str | None = None,
    storage_options: Sequence[tuple[str, str]] = (),
    force: bool = False,
) -> JobOptions:
    return JobOptions(
        workers=settings.workers,
        threads_per_worker=settings.threads_per_worker,
        execution=settings.execution,
        address=address,
        work_store=work_store,
        storage_options=tuple(storage_options),
        show_progress=show_progress,
        force=force,
    )


def run_swap(
    sources: Sequence[Path | str],
    target: Path | str,
    output: Path | str,
    settings: SwapSettings,
    report_path: Path | None = None,
    address: str | None = None,
    show_progress: bool = True,
    sequential: bool = False,
    work_store: str | None = None,
    storage_options: Sequence[tuple[str, str]] = (),
    force: bool = False,
) -> SwapReport:
    """Render one target; raises the render's error; `sequential` runs without Ray."""
    request = RenderRequest(
        str(target), tuple(str(source) for source in sources), str(output), settings
    )
    check_output_is_not_an_input(request)
    if sequential:
        report = run_sequential(request, dict(storage_options))
        logger.info(report.summary())
    else:
        from facefusion_ray.engine.job import run_job

        options = job_options_for(
            settings, address, show_progress, work_store, storage_options, force
        )
        outcome = run_job([request], options).renders[0]
        if outcome.status == FAILED:
            error_type = type(outcome.cause)
            if not isinstance(outcome.cause, FaceFusionRayError):
                error_type = FaceFusionRayError
            raise error_type(outcome.error) from outcome.cause
        assert outcome.report is not None
        report = outcome.report
    if report_path is not None:
        write_report(report, report_path)
    return report
