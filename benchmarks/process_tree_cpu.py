"""CPU time of a command's whole process tree by kind, sampled from /proc while it runs.

The swap report says exactly what the driver, the frame loops and their ffmpeg children
used; what it cannot see is Ray's own processes (GCS, raylet, agents, idle workers) and the
actor processes outside their frame loops (imports, sessions, Ray's threads). This sampler
reads /proc/PID/stat of every descendant of the command a few times a second and keeps the
last figure of each process, so a process's last interval before it exits is missed
(at most `interval` seconds each).
"""

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_SECONDS = 0.5
RAY = "ray"
ACTOR_PROCESSES = "actor_processes"
FFMPEG = "ffmpeg"
DRIVER = "driver"


@dataclass(frozen=True)
class ProcessSample:
    pid: int
    parent: int
    cpu_seconds: float


def process_kind(pid: int, root: int) -> str | None:
    """What a process of the tree is, from its command line; None once it is gone."""
    if pid == root:
        return DRIVER
    try:
        arguments = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    command = arguments.split(b"\0")[0].decode(errors="replace")
    if not command:
        return None  # a zombie (or a process between fork and exec) does not say what it is
    if os.path.basename(command).startswith("ffmpeg"):
        return FFMPEG
    # Ray names an actor's process after its class once the actor is created.
    if command.startswith("ray::RenderActor"):
        return ACTOR_PROCESSES
    # Ray's own, or a child between fork and exec (its parent's command line): the next
    # sample tells.
    return RAY


def read_samples() -> Iterator[ProcessSample]:
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name, which is in parentheses and may hold spaces.
        fields = stat[stat.rindex(")") + 2 :].split()
        parent, user, system = int(fields[1]), int(fields[11]), int(fields[12])
        yield ProcessSample(int(entry.name), parent, (user + system) / CLOCK_TICKS)


def descendants(samples: list[ProcessSample], root: int) -> list[ProcessSample]:
    children: dict[int, list[ProcessSample]] = {}
    for sample in samples:
        children.setdefault(sample.parent, []).append(sample)
    found: list[ProcessSample] = []
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child.pid)
    return found


class ProcessTreeCpu:
    """Samples `root` and its descendants in a thread until `stop()`; `by_kind()` sums the
    last CPU figure seen of every process by kind (driver, actor_processes, ffmpeg, ray)."""

    def __init__(self, root: int, interval: float = SAMPLE_SECONDS) -> None:
        self._root = root
        self._interval = interval
        self._last: dict[int, tuple[str, float]] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="process-tree-cpu", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def by_kind(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for kind, seconds in self._last.values():
            totals[kind] = round(totals.get(kind, 0.0) + seconds, 2)
        return totals

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        samples = list(read_samples())
        own = [sample for sample in samples if sample.pid == self._root]
        for sample in own + descendants(samples, self._root):
            known = self._last.get(sample.pid)
            kind = process_kind(sample.pid, self._root)
            # An idle Ray worker that became an actor stays the actor; a zombie keeps its kind.
            if known is not None and (kind is None or known[0] == ACTOR_PROCESSES):
                kind = known[0]
            if kind is not None:
                self._last[sample.pid] = (kind, sample.cpu_seconds)
