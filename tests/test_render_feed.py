"""The driver prepares a catalog's renders a bounded number ahead of the pool, so its memory
(and the object store's render contexts) does not grow with the catalog."""

import time
from pathlib import Path

from benchmarks.scale_catalog import CatalogShape, build_catalog
from facefusion_ray.engine.job_options import JobOptions
from facefusion_ray.engine.job_report import RenderOutcome
from facefusion_ray.engine.render_feed import RenderFeed
from facefusion_ray.pipeline.render_request import RenderRequest
from facefusion_ray.settings import SwapSettings


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_preparation_waits_while_the_ready_renders_are_not_taken(tmp_path: Path) -> None:
    catalog = build_catalog(CatalogShape(clips=4, sources=1, frames=4), tmp_path / "catalog")
    settings = SwapSettings(face_detector_frame_aspect=True, use_analysis_cache=False)
    requests = [
        RenderRequest(str(clip), (str(catalog.sources[0]),), str(tmp_path / clip.name), settings)
        for clip in catalog.clips
    ]
    outcomes = [RenderOutcome(str(index), r.target, r.output) for index, r in enumerate(requests)]
    options = JobOptions(workers=1, work_store=str(tmp_path / "work"))
    feed = RenderFeed(requests, outcomes, options.work_store or "", options, ahead=1)
    # One render waits to be taken, the next is prepared and held: the third is not started.
    assert wait_until(lambda: outcomes[1].report is not None, 120)
    assert not wait_until(lambda: outcomes[2].report is not None, 3)
    taken = []
    while not feed.finished:
        taken.extend(video.index for video in feed.take(wait=True))
    assert taken == [0, 1, 2, 3]
    assert all(outcome.preparation_seconds > 0 for outcome in outcomes)
