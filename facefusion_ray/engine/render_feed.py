"""Preparing a job's renders in the background, so the pool starts on the first video while
the driver still fingerprints and analyses the sources of the next ones."""

import logging
import queue
import threading
import time
from collections.abc import Sequence

from facefusion_ray.engine.job_options import JobOptions
from facefusion_ray.engine.job_report import RenderOutcome
from facefusion_ray.engine.render_plan import VideoRender, chunk_balance, fail, plan_video
from facefusion_ray.errors import FaceFusionRayError
from facefusion_ray.pipeline.render_preparation import driver_models, finish_report, prepare_render
from facefusion_ray.pipeline.render_request import RenderRequest
from facefusion_ray.pipeline.shared_sources import SharedSources
from facefusion_ray.pipeline.still_image import render_still_image
from facefusion_ray.pipeline.target_input import NodeProbe

logger = logging.getLogger(__name__)


class RenderFeed:
    """Prepares `requests` in order on a thread; `take` hands out the video renders that need
    work as they become ready. Images are rendered and failures recorded on the way."""

    def __init__(
        self,
        requests: Sequence[RenderRequest],
        outcomes: Sequence[RenderOutcome],
        work_store: str,
        options: JobOptions,
        ahead: int = 0,
        node_probe: NodeProbe | None = None,
    ) -> None:
        """With `ahead`, preparation waits while that many video renders are ready and not
        taken: the driver holds a bounded number of prepared renders, whatever the catalog."""
        self._requests = requests
        self._outcomes = outcomes
        self._work_store = work_store
        self._options = options
        self._node_probe = node_probe
        self._balance_over = chunk_balance(len(requests), options.workers)
        self._ready: queue.Queue[VideoRender | None] = queue.Queue(maxsize=ahead)
        self._finished = False
        self._thread = threading.Thread(target=self._prepare_all, name="prepare", daemon=True)
        self._thread.start()

    @property
    def finished(self) -> bool:
        """Every request is prepared and every video render has been taken."""
        return self._finished

    def take(self, wait: bool) -> list[VideoRender]:
        """The renders ready now; with `wait`, blocks until there is one or the feed is done."""
        videos: list[VideoRender] = []
        while not self._finished:
            try:
                item = self._ready.get(block=wait and not videos)
            except queue.Empty:
                break
            if item is None:
                self._finished = True
            else:
                videos.append(item)
        return videos

    def _prepare_all(self) -> None:
        storage_options = dict(self._options.storage_options)
        models = driver_models()
        shared = SharedSources(storage_options)  # each source prepared once per job
        videos = 0
        try:
            for request, outcome in zip(self._requests, self._outcomes, strict=True):
                started = time.perf_counter()
                try:
                    prepared = prepare_render(
                        request, models, storage_options, shared, self._node_probe
                    )
                    outcome.report = prepared.report
                    if prepared.info.kind == "image":
                        outcome.preparation_seconds = round(time.perf_counter() - started, 4)
                        render_still_image(prepared, storage_options)
                        finish_report(prepared)
                        continue
                    video = plan_video(
                        videos,
                        prepared,
                        outcome,
                        self._work_store,
                        self._options,
                        self._balance_over,
                    )
                    # The driver's whole cost of a video before its chunks are queued.
                    outcome.preparation_seconds = round(time.perf_counter() - started, 4)
                except (FaceFusionRayError, OSError) as error:
                    fail(outcome, str(error), error)
                    continue
                except Exception as error:  # a bug must fail its render, not hang the job
                    logger.exception("preparing %s failed", request.label)
                    fail(outcome, f"{type(error).__name__}: {error}", error)
                    continue
                if video is not None:
                    videos += 1
                    self._ready.put(video)
        finally:
            self._ready.put(None)
