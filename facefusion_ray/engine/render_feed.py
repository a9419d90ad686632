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
from facefusion_ray.engine.target_homes import TargetHomes
from facefusion_ray.errors import FaceFusionRayError
from facefusion_ray.pipeline.render_preparation import (
    driver_models,
    finish_report,
    may_probe_on_a_node,
    needs_node_probe,
    prepare_render,
)
from facefusion_ray.pipeline.render_request import RenderRequest
from facefusion_ray.pipeline.shared_sources import SharedSources
from facefusion_ray.pipeline.still_image import render_still_image
from facefusion_ray.pipeline.target_input import resolve_target
from facefusion_ray.storage.locations import is_remote

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
        node_probe: TargetHomes | None = None,
    ) -> None:
        """With `ahead`, preparation waits while that many video renders are ready and not
        taken: the driver holds a bounded number of prepared renders, whatever the catalog."""
        self._requests = requests
        self._outcomes = outcomes
        self._work_store = work_store
        self._options = options
        self._node_probe = node_probe
        # Node probes run this many targets ahead of preparation, one per worker.
        self._probes_ahead = options.workers
        self._next_to_probe = 0
        self._probes_started: set[str] = set()
        # Whether the last video prepared needed work (then the next ones likely do too).
        self._probing_ahead = False
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
            for index, (request, outcome) in enumerate(
                zip(self._requests, self._outcomes, strict=True)
            ):
                started = time.perf_counter()
                self._start_node_probes(index, storage_options)
                try:
                    prepared = prepare_render(
                        request, models, storage_options, shared, self._node_probe
                    )
                    outcome.report = prepared.report
                    if prepared.report.kind == "image":
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
                    self._probing_ahead = video is not None
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

    def _start_node_probes(self, current: int, storage_options: dict[str, str]) -> None:
        """Keep node probes started for the targets of the requests after `current`: each
        takes a download and a probe on a node, which the driver would otherwise wait for in
        turn. Only while the renders need work: a render found up to date by its keys never
        has its target read, and a re-run of a finished catalog reads none."""
        probe = self._node_probe
        self._next_to_probe = max(self._next_to_probe, current + 1)
        if not self._probing_ahead:
            return
        while probe is not None and self._next_to_probe < len(self._requests):
            if probe.pending >= self._probes_ahead:
                return
            request = self._requests[self._next_to_probe]
            self._next_to_probe += 1
            settings = request.settings
            if not is_remote(request.target) or not may_probe_on_a_node(settings):
                continue
            if request.target in self._probes_started:
                continue  # the renders of one target follow each other in a catalog
            self._probes_started.add(request.target)
            try:
                target = resolve_target(
                    request.target, settings.target_reads, storage_options, probed_on_a_node=True
                )
            except (FaceFusionRayError, OSError):
                continue  # its preparation reports it
            if needs_node_probe(target):
                probe.start(target, settings.max_pixels)
