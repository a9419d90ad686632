"""Chunks of every render over one pool of actors, with bounded work in flight and recovery.

The driver owns recovery: actors are created without Ray restarts, so a dead actor or a lost
node surfaces here as an actor error on each chunk it held; those chunks go back to the queue
and a replacement actor is started (and used once it is placed). A chunk that failed on a
transient object-store error (a timeout, a connection reset, throttling, a 5xx) goes back to
the queue after a pause, a few times at most. Any other error a chunk raises in the actor is
deterministic: its render is reported failed and the rest of the job goes on.
"""

import heapq
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import ray
from ray.actor import ActorHandle

from facefusion_ray.engine.chunk_queue import ChunkQueue
from facefusion_ray.errors import FaceFusionRayError
from facefusion_ray.pipeline.chunks import Chunk
from facefusion_ray.pipeline.swap_report import ChunkResult
from facefusion_ray.storage.errors import TransientStorageError

logger = logging.getLogger(__name__)

# One chunk running and one queued per actor: the actor never idles between chunks, and the
# driver never holds more than a handful of references.
CHUNKS_IN_FLIGHT_PER_ACTOR = 2
# A chunk whose actor died this many times is not retried again (it may be what kills them).
MAX_ATTEMPTS_PER_CHUNK = 3
# Pauses before a chunk that failed on a transient store error runs again; once they are used
# up, the next such failure fails its render.
STORE_RETRY_PAUSES_SECONDS = (1.0, 4.0, 16.0)
# How long the job waits for an actor to be placed when it has none at all.
ACTOR_START_TIMEOUT_SECONDS = 600.0
# Once one actor is ready, how long the others may take before work is handed out anyway.
STARTUP_GRACE_SECONDS = 30.0
_ACTOR_LOST = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)


@dataclass
class ChunkTask:
    render: int
    chunk: Chunk
    context: ray.ObjectRef
    # A follower waits for its leader: the first render of the same frames with the same
    # analysis, whose chunk fills the analysis cache the followers then read.
    leader: tuple[int, int] | None = None
    # Times its actor was lost, and times it failed on a transient store error.
    attempts: int = 0
    store_retries: int = 0
    # The identity of the staged copy of the target the chunk reads (see `ChunkQueue`), or
    # None when it reads the target in place or by range.
    place: str | None = None
    # The node that staged that copy to probe it for the driver, if one did.
    home: str | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.render, self.chunk.index)


@dataclass(frozen=True)
class ChunkDone:
    task: ChunkTask
    result: ChunkResult


@dataclass(frozen=True)
class ChunkFailed:
    task: ChunkTask
    reason: str
    error: BaseException | None = None


class ChunkScheduler:
    def __init__(
        self,
        make_actor: Callable[[int], ActorHandle],
        actors: int,
        chunks_in_flight_per_actor: int = CHUNKS_IN_FLIGHT_PER_ACTOR,
    ) -> None:
        self._make_actor = make_actor
        self._in_flight_limit = chunks_in_flight_per_actor
        self._ready_actors: list[ActorHandle] = []
        self._starting: dict[ray.ObjectRef, ActorHandle] = {}
        self._load: dict[ActorHandle, int] = {}
        self._node: dict[ActorHandle, str] = {}
        self._queue: ChunkQueue[ChunkTask] = ChunkQueue()
        self._blocked: dict[tuple[int, int], list[ChunkTask]] = {}
        # Chunks to queue again once their pause after a transient store error is over.
        self._paused: list[tuple[float, int, ChunkTask]] = []
        self._in_flight: dict[ray.ObjectRef, tuple[ActorHandle, ChunkTask]] = {}
        self._cancelled: set[int] = set()
        self._finished: set[tuple[int, int]] = set()
        self.actors_replaced = 0
        self.store_retries = 0
        # Chunks handed to actors, and the driver's seconds in this class outside `ray.wait`.
        self.dispatched = 0
        self.driver_seconds = 0.0
        # What each actor answered when it was ready (where it runs, what it had done before).
        self.ready_answers: list[dict[str, object]] = []
        self._actors_started = 0
        for _ in range(actors):
            self._start_actor()

    def add(self, task: ChunkTask) -> None:
        if task.leader is not None and task.leader not in self._finished:
            self._blocked.setdefault(task.leader, []).append(task)
        else:
            self._enqueue(task)

    def cancel_render(self, render: int) -> None:
        """Drop a failed render's queued chunks; its chunks in flight finish unused."""
        self._cancelled.add(render)
        dropped = self._queue.remove(lambda task: task.render == render)
        dropped += [entry[2] for entry in self._paused if entry[2].render == render]
        self._paused = [entry for entry in self._paused if entry[2].render != render]
        heapq.heapify(self._paused)
        # Chunks of other renders waiting for a dropped leader analyse their frames themselves.
        for task in dropped:
            self._release_followers(task.key)

    def wait_until_ready(self, grace_seconds: float = STARTUP_GRACE_SECONDS) -> None:
        """Block until the pool is placed (start-up is timed apart from work).

        Waits for one actor, then up to `grace_seconds` more for the others: chunks handed out
        while a sibling is still starting would all queue on the first actor.
        """
        while not self._ready_actors:
            self._collect_started(self._wait(list(self._starting)))
        deadline = time.monotonic() + grace_seconds
        while self._starting and (remaining := deadline - time.monotonic()) > 0:
            done, _ = ray.wait(list(self._starting), num_returns=1, timeout=remaining)
            self._collect_started(done)

    def busy(self) -> bool:
        """Chunks are queued, paused, waiting for a leader, or in flight."""
        return bool(self._queue or self._paused or self._in_flight or self._blocked_live())

    def step(self, timeout: float | None = None) -> list[ChunkDone | ChunkFailed]:
        """Hand out what can be handed out, then wait (at most `timeout` once the pool has an
        actor) for the next chunk or actor to finish; [] when nothing finished in time."""
        started = time.perf_counter()
        self._resume_paused()
        self._submit()
        waiting = list(self._in_flight) + list(self._starting)
        self.driver_seconds += time.perf_counter() - started
        pause = self._paused[0][0] - time.monotonic() if self._paused else None
        if not waiting:
            if pause is not None:
                time.sleep(max(0.0, min(pause, timeout if timeout is not None else pause)))
                return []
            if self.busy():
                raise FaceFusionRayError("no worker is left to render the remaining chunks")
            return []
        if pause is not None:
            timeout = max(0.0, pause if timeout is None else min(timeout, pause))
        done = self._wait(waiting, timeout)
        started = time.perf_counter()
        self._collect_started([ref for ref in done if ref in self._starting])
        events: list[ChunkDone | ChunkFailed] = []
        for reference in done:
            if reference in self._in_flight:
                events.extend(self._collect_chunk(reference))
        self.driver_seconds += time.perf_counter() - started
        return events

    def actors(self) -> list[ActorHandle]:
        return list(self._ready_actors)

    def actor_nodes(self) -> list[str]:
        """The node of each ready actor."""
        return [self._node[actor] for actor in self._ready_actors]

    def shutdown(self) -> None:
        for actor in [*self._ready_actors, *self._starting.values()]:
            ray.kill(actor)
        self._ready_actors.clear()
        self._starting.clear()

    def _enqueue(self, task: ChunkTask) -> None:
        if task.render not in self._cancelled:
            chunk = task.chunk
            self._queue.push(task.render, chunk.index, task.place, task, task.home, chunk.count)

    def _blocked_live(self) -> bool:
        return any(
            task.render not in self._cancelled for tasks in self._blocked.values() for task in tasks
        )

    def _release_followers(self, leader: tuple[int, int]) -> None:
        self._finished.add(leader)
        for follower in self._blocked.pop(leader, []):
            self._enqueue(follower)

    def _resume_paused(self) -> None:
        now = time.monotonic()
        while self._paused and self._paused[0][0] <= now:
            self._enqueue(heapq.heappop(self._paused)[2])

    def _start_actor(self) -> None:
        actor = self._make_actor(self._actors_started)
        self._actors_started += 1
        self._starting[actor.ready.remote()] = actor

    def _wait(
        self, references: list[ray.ObjectRef], timeout: float | None = None
    ) -> list[ray.ObjectRef]:
        if self._ready_actors:
            done, _ = ray.wait(references, num_returns=1, timeout=timeout)
            return done
        started = time.monotonic()
        done, _ = ray.wait(references, num_returns=1, timeout=ACTOR_START_TIMEOUT_SECONDS)
        if not done:
            raise FaceFusionRayError(
                f"no worker could be placed within {time.monotonic() - started:.0f} s: "
                "the cluster has no free resources for the requested CPUs/GPUs"
            )
        return done

    def _collect_started(self, references: list[ray.ObjectRef]) -> None:
        for reference in references:
            actor = self._starting.pop(reference)
            try:
                answer = ray.get(reference)
            except _ACTOR_LOST as error:
                logger.warning("a worker failed to start: %s", str(error).splitlines()[0])
                if not self._ready_actors and not self._starting:
                    raise FaceFusionRayError(f"no worker could start: {error}") from None
                continue
            self._ready_actors.append(actor)
            self._load[actor] = 0
            self._node[actor] = str(answer.get("node_id", ""))
            self.ready_answers.append(answer)

    def _submit(self) -> None:
        """Hands out chunks, least-loaded actors first, while one of them takes one."""
        while self._queue:
            free: dict[str, int] = {}
            for actor, load in self._load.items():
                node = self._node[actor]
                free[node] = free.get(node, 0) + self._in_flight_limit - load
            for actor in sorted(self._ready_actors, key=lambda candidate: self._load[candidate]):
                load = self._load[actor]
                if load >= self._in_flight_limit:
                    continue
                task = self._queue.take(self._node[actor], load, free, len(self._ready_actors))
                if task is not None:
                    self._dispatch(actor, task)
                    break
            else:
                return

    def _dispatch(self, actor: ActorHandle, task: ChunkTask) -> None:
        # A retried chunk may have been committed by the worker that was lost, or by one whose
        # store request failed after the store had done it.
        retry = task.attempts > 0 or task.store_retries > 0
        reference = actor.render.remote(task.context, task.chunk, retry)
        self._in_flight[reference] = (actor, task)
        self._load[actor] += 1
        self.dispatched += 1

    def _collect_chunk(self, reference: ray.ObjectRef) -> Iterator[ChunkDone | ChunkFailed]:
        actor, task = self._in_flight.pop(reference)
        if actor in self._load:
            self._load[actor] -= 1
        try:
            result = ray.get(reference)
        except _ACTOR_LOST as error:
            yield from self._retry_elsewhere(actor, task, error)
            return
        except ray.exceptions.RayTaskError as error:
            if self._pause_after_store_error(task, error):
                return
            self._release_followers(task.key)
            if task.render not in self._cancelled:
                yield ChunkFailed(task, task_error_message(error), error.cause)
            return
        self._release_followers(task.key)
        if task.render not in self._cancelled:
            yield ChunkDone(task, result)

    def _pause_after_store_error(self, task: ChunkTask, error: ray.exceptions.RayTaskError) -> bool:
        """Queues the chunk again after a pause when it failed on a transient store error and
        has pauses left; False when its render must fail."""
        if not isinstance(error.cause, TransientStorageError) or task.render in self._cancelled:
            return False
        if task.store_retries >= len(STORE_RETRY_PAUSES_SECONDS):
            return False
        pause = STORE_RETRY_PAUSES_SECONDS[task.store_retries]
        task.store_retries += 1
        self.store_retries += 1
        logger.warning("%s; the chunk runs again in %.0f s", error.cause, pause)
        heapq.heappush(self._paused, (time.monotonic() + pause, self.store_retries, task))
        return True

    def _retry_elsewhere(
        self, actor: ActorHandle, task: ChunkTask, error: BaseException
    ) -> Iterator[ChunkFailed]:
        if actor in self._load:
            logger.warning(
                "a worker was lost (%s); its chunks run again elsewhere",
                str(error).splitlines()[0],
            )
            self._ready_actors.remove(actor)
            del self._load[actor]
            del self._node[actor]
            self.actors_replaced += 1
            self._start_actor()
        task.attempts += 1
        if task.attempts >= MAX_ATTEMPTS_PER_CHUNK:
            self._release_followers(task.key)
            yield ChunkFailed(task, f"its worker died {task.attempts} times")
            return
        self._enqueue(task)


def task_error_message(error: ray.exceptions.RayTaskError) -> str:
    """The actor's own message: a project error as written, anything else with its type."""
    cause = error.cause
    if isinstance(cause, FaceFusionRayError):
        return str(cause)
    if cause is not None:
        return f"{type(cause).__name__}: {cause}"
    return str(error).splitlines()[0]
