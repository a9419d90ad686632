"""Decoding, the per-frame work and encoding side by side within one worker.

ffmpeg decodes and encodes in processes of its own; what the frame loop would otherwise wait
for is the Python side of the pipes: reading a frame's bytes, converting it between 4:2:0 and
BGR, converting back and writing it. Two threads take that over, each with a bounded queue
(memory stays a few frames, whatever the video's length): `ReadAhead` pulls decoded frames
ahead of the loop, `WriteBehind` feeds the encoder behind it. Pipe I/O and OpenCV release the
GIL, so the threads overlap the loop's own work. An error in either thread is raised in the
loop as it was raised in the thread (a MediaError stays a MediaError); leaving early or
failing stops both threads, and the encoder is aborted, leaving no partial segment.
"""

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar

# Frames held ahead of the loop and behind it (a 720p frame is ~4 MB decoded with its planes).
READ_AHEAD_FRAMES = 3
WRITE_BEHIND_FRAMES = 3
# How often a thread blocked on a full queue looks whether it was told to stop.
_STOP_POLL_SECONDS = 0.05

Item = TypeVar("Item")
Written = TypeVar("Written", contravariant=True)


class _End:
    """Put in a queue after the last item."""


@dataclass(frozen=True)
class _Failure:
    error: BaseException


class ReadAhead(Generic[Item]):
    """Iterates `items` in a thread of its own, at most `depth` items ahead of the consumer.

    Use as a context manager around the loop; leaving it (early or by an exception) stops the
    thread, which closes `items` (a decoding generator kills its ffmpeg then)."""

    def __init__(self, items: Iterator[Item], depth: int = READ_AHEAD_FRAMES) -> None:
        self._items = items
        self._queue: queue.Queue[Item | _End | _Failure] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="read-ahead", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def __iter__(self) -> Iterator[Item]:
        while True:
            item = self._queue.get()
            if isinstance(item, _End):
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def _run(self) -> None:
        try:
            for item in self._items:
                if not _put_unless_stopped(self._queue, item, self._stop):
                    return
            _put_unless_stopped(self._queue, _End(), self._stop)
        except BaseException as error:  # handed to the consumer, raised there
            _put_unless_stopped(self._queue, _Failure(error), self._stop)
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()


class FrameSink(Protocol[Written]):
    """What WriteBehind drives: a segment encoder, or anything that writes, closes, aborts."""

    def write(self, item: Written, /) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class WriteBehind(Generic[Item]):
    """Hands items to `sink.write` in a thread of its own, at most `depth` behind the caller.

    Use as a context manager: a clean exit waits for the last write and closes the sink; an
    exception aborts it. A failed write is raised by the next `write` or by `close`."""

    def __init__(self, sink: FrameSink[Item], depth: int = WRITE_BEHIND_FRAMES) -> None:
        self._sink = sink
        self._queue: queue.Queue[Item | _End] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="write-behind", daemon=True)
        self._finished = False

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, item: Item) -> None:
        self._raise_failure()
        if self._finished:
            raise ValueError("write after the writer was closed")
        # The thread keeps taking items after a failure, so this never blocks for good.
        self._queue.put(item)

    def close(self) -> None:
        """Wait for every write, then close the sink (its errors are raised here)."""
        if self._finished:
            return
        self._finished = True
        self._queue.put(_End())
        self._thread.join()
        if self._failure is not None:
            self._sink.abort()
            raise self._failure
        self._sink.close()

    def abort(self) -> None:
        """Drop what is queued, stop the thread and abort the sink."""
        self._finished = True
        self._stop.set()
        _drain(self._queue)
        self._queue.put(_End())
        # A write blocked on a stuck encoder ends once the sink's abort kills it.
        self._thread.join(timeout=1.0)
        self._sink.abort()
        self._thread.join()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, _End):
                return
            if self._failure is not None or self._stop.is_set():
                continue  # drained, so the caller's put never waits on a dead writer
            try:
                self._sink.write(item)
            except BaseException as error:  # raised in the caller by its next write or close
                self._failure = error


def _put_unless_stopped(
    into: "queue.Queue[Item | _End | _Failure]",
    item: "Item | _End | _Failure",
    stop: threading.Event,
) -> bool:
    """Put `item`, waiting while the queue is full; False if told to stop first."""
    while not stop.is_set():
        try:
            into.put(item, timeout=_STOP_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


def _drain(from_queue: "queue.Queue[Item | _End]") -> None:
    while True:
        try:
            from_queue.get_nowait()
        except queue.Empty:
            return
