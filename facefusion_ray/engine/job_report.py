"""What a whole job did: every render with its status, timings and cache use."""

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from facefusion_ray.atomic_files import write_bytes_atomically
from facefusion_ray.engine.startup_report import StartupReport
from facefusion_ray.pipeline.review_probe import ChunkReview
from facefusion_ray.pipeline.swap_report import DRIVER_CPU, DRIVER_FFMPEG_CPU, SwapReport
from facefusion_ray.storage.locations import is_remote, publish_output

RENDERED = "rendered"
UP_TO_DATE = "up to date"
FAILED = "failed"


@dataclass
class RenderOutcome:
    name: str
    target: str
    output: str
    status: str = RENDERED
    error: str | None = None
    report: SwapReport | None = None
    # The exception behind `error`, for callers that re-raise it (not in the JSON).
    cause: BaseException | None = None
    # What an A/B review took from each rendered chunk (when the job reviews its renders).
    reviews: list[ChunkReview] = field(default_factory=list)
    # Driver seconds spent preparing the render (inputs, keys, sources) and planning its chunks.
    preparation_seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        report = self.report
        return {
            "name": self.name,
            "target": self.target,
            "output": self.output,
            "status": self.status,
            "error": self.error,
            "seconds": report.seconds if report else 0.0,
            "preparation_seconds": self.preparation_seconds,
            "frames": report.frames_total if report else 0,
            "chunks": report.chunks if report else 0,
            "chunks_skipped": report.chunks_skipped if report else 0,
            "cache": dict(report.cache) if report else {"hits": 0, "misses": 0},
            "report": report.to_dict() if report else None,
        }

    def line(self) -> str:
        if self.status == FAILED:
            return f"FAILED      {self.name}: {self.error}"
        report = self.report
        assert report is not None
        if self.status == UP_TO_DATE:
            return f"up to date  {self.name} -> {self.output}"
        cache = report.cache
        skipped = f", {report.chunks_skipped} chunks reused" if report.chunks_skipped else ""
        return (
            f"rendered    {self.name} -> {self.output}: {report.frames_total} frames in "
            f"{report.seconds:.1f} s, cache {cache['hits']} hits / {cache['misses']} misses"
            f"{skipped}"
        )


@dataclass
class JobReport:
    renders: list[RenderOutcome] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 0
    startup_seconds: float = 0.0
    workers_replaced: int = 0
    # Chunks handed to actors (a retried chunk counts again) and the driver's own seconds
    # spent queueing, handing out and collecting them (waiting on the actors left out).
    chunks_dispatched: int = 0
    scheduling_seconds: float = 0.0
    # Chunks queued again after a transient object-store error (each time counts).
    chunks_retried_after_store_errors: int = 0
    # What the start-up was made of and what it reused (a kept Ray, warm actors, sessions).
    startup: StartupReport = field(default_factory=StartupReport)
    # CPU seconds by process kind over the whole job (see `job_cpu_seconds`).
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> list[RenderOutcome]:
        return [render for render in self.renders if render.status == FAILED]

    def counts(self) -> dict[str, int]:
        counts = {RENDERED: 0, UP_TO_DATE: 0, FAILED: 0}
        for render in self.renders:
            counts[render.status] += 1
        return counts

    def to_dict(self) -> dict[str, object]:
        return {
            "seconds": self.seconds,
            "workers": self.workers,
            "startup_seconds": self.startup_seconds,
            "workers_replaced": self.workers_replaced,
            "chunks_dispatched": self.chunks_dispatched,
            "scheduling_seconds": self.scheduling_seconds,
            "chunks_retried_after_store_errors": self.chunks_retried_after_store_errors,
            "startup": self.startup.to_dict(),
            "cpu_seconds": self.cpu_seconds,
            "counts": self.counts(),
            "renders": [render.to_dict() for render in self.renders],
        }

    def summary(self) -> str:
        counts = self.counts()
        lines = [render.line() for render in self.renders]
        lines.append(
            f"{len(self.renders)} renders: {counts[RENDERED]} rendered, "
            f"{counts[UP_TO_DATE]} up to date, {counts[FAILED]} failed in {self.seconds:.1f} s "
            f"on {self.workers} workers"
        )
        if self.startup.ray:
            lines.append(self.startup.line())
        return "\n".join(lines)


def job_cpu_seconds(
    renders: list[RenderOutcome], driver_own: float, driver_children: Mapping[str, float]
) -> dict[str, float]:
    """The workers' CPU by kind summed over the renders, and the driver process's own and
    its ffmpeg children's (probe, assembly) over the whole job."""
    totals: dict[str, float] = {}
    for render in renders:
        if render.report is None:
            continue
        for kind, seconds in render.report.cpu_seconds.items():
            if kind not in (DRIVER_CPU, DRIVER_FFMPEG_CPU):
                totals[kind] = round(totals.get(kind, 0.0) + seconds, 6)
    totals[DRIVER_CPU] = round(driver_own, 6)
    totals[DRIVER_FFMPEG_CPU] = round(sum(driver_children.values()), 6)
    return totals


def write_job_report(report: JobReport, path: Path) -> None:
    """The JSON report at `path` and the human summary beside it (`.txt`)."""
    payload = json.dumps(report.to_dict(), indent=2) + "\n"
    write_bytes_atomically(path, payload.encode())
    write_bytes_atomically(path.with_suffix(".txt"), (report.summary() + "\n").encode())


def publish_job_report(
    job: JobReport, location: str | Path, storage_options: Mapping[str, str]
) -> None:
    """The job's JSON report and its `.txt` summary at a local path or an s3:// URL."""
    if not is_remote(str(location)):
        write_job_report(job, Path(location))
        return
    remote = str(location)
    with tempfile.TemporaryDirectory(prefix="facefusion-ray-report-") as scratch:
        local = Path(scratch) / remote.rsplit("/", 1)[-1]
        write_job_report(job, local)
        publish_output(local, remote, storage_options)
        summary = local.with_suffix(".txt")
        publish_output(summary, remote.rsplit("/", 1)[0] + "/" + summary.name, storage_options)
