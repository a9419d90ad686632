"""The driver's preparation alone (`benchmarks.scale --driver-only`): every render of the catalog
prepared by the job's own feed against SeaweedFS, with no cluster, so much larger catalogs can
be measured on a small machine. Records the preparation per render and how the feed thread's
memory grows with the renders it has prepared."""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

from benchmarks.scale_catalog import build_catalog
from benchmarks.scale_run import BUCKETS, ScaleRun, upload_catalog
from facefusion_ray.paths import CACHE_ENV
from tests.seaweedfs import running_s3_server

# Resident memory is sampled after every this many renders.
SAMPLE_EVERY = 8


def anonymous_rss_mib() -> float:
    """This process's anonymous resident memory (heap), MiB."""
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return 0.0


def prepare_catalog(run: ScaleRun, folder: Path) -> dict[str, Any]:
    from benchmarks.scale_cluster import node_cache

    os.environ[CACHE_ENV] = str(node_cache(folder, "driver"))
    catalog = build_catalog(run.catalog, folder / "catalog")
    server_folder = folder / "seaweedfs"
    server_folder.mkdir()
    with running_s3_server(server_folder) as server:
        buckets = {name: server.create_bucket(name) for name in BUCKETS}
        upload_catalog(server, catalog, buckets)
        return _prepared(run, buckets, server.storage_options())


def _prepared(run: ScaleRun, buckets: dict[str, str], options: dict[str, str]) -> dict[str, Any]:
    from facefusion_ray.engine.job_options import JobOptions
    from facefusion_ray.engine.job_report import RenderOutcome
    from facefusion_ray.engine.render_feed import RenderFeed
    from facefusion_ray.pipeline.render_request import RenderRequest
    from facefusion_ray.settings import SwapSettings

    settings = SwapSettings(
        face_swapper_model="classic",
        face_detector_frame_aspect=True,
        chunk_frames=run.chunk_frames,
        analysis_cache=f"s3://{buckets['cache']}/analysis",
    )
    requests = [
        RenderRequest(
            f"s3://{buckets['clips']}/clips/clip_{clip:05d}.mp4",
            (f"s3://{buckets['faces']}/faces/face_{source:02d}.png",),
            f"s3://{buckets['out']}/{clip}_{source}.mp4",
            settings,
        )
        for clip in range(run.catalog.clips)
        for source in range(run.catalog.sources)
    ]
    outcomes = [RenderOutcome(str(i), r.target, r.output) for i, r in enumerate(requests)]
    job = JobOptions(
        workers=run.workers,
        work_store=f"s3://{buckets['work']}/segments",
        storage_options=tuple(options.items()),
    )
    start = anonymous_rss_mib()
    feed = RenderFeed(requests, outcomes, job.work_store or "", job)
    taken, samples = 0, [(0, round(start, 1))]
    while not feed.finished:
        taken += len(feed.take(wait=True))
        if taken - samples[-1][0] >= SAMPLE_EVERY:
            samples.append((taken, round(anonymous_rss_mib(), 1)))
    samples.append((taken, round(anonymous_rss_mib(), 1)))
    preparation = [outcome.preparation_seconds for outcome in outcomes]
    # Past the first render of each source, the sources are the job's already (when shared).
    later = preparation[run.catalog.sources :]
    return {
        "renders": len(requests),
        "failed": sum(1 for outcome in outcomes if outcome.error),
        "preparation_ms_mean": round(1000 * statistics.fmean(preparation), 1),
        "preparation_ms_median": round(1000 * statistics.median(preparation), 1),
        "preparation_ms_mean_after_first_clip": round(1000 * statistics.fmean(later), 1)
        if later
        else None,
        "heap_mib_growth_per_render": round((samples[-1][1] - start) / max(1, taken), 3),
        "heap_mib_by_renders_prepared": samples,
    }
