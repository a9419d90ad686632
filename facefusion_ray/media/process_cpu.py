"""CPU time by process kind: this process's own, and its ffmpeg children's by what they did.

`resource.getrusage(RUSAGE_CHILDREN)` sums every reaped child into one figure; the ffmpeg
wrapper reaps its children with `os.wait4` instead and files each one's CPU time here under
its kind (decode, encode, other), so a frame loop can tell decoding from encoding.
"""

import resource
import threading
from collections import defaultdict

DECODE = "decode"
ENCODE = "encode"
OTHER = "other"


class ChildCpuLedger:
    """CPU seconds (user + system) of the reaped ffmpeg children of this process, by kind.

    Process-wide like the kernel's own child accounting; readers take differences of two
    snapshots around the work they measure."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: defaultdict[str, float] = defaultdict(float)

    def add(self, kind: str, seconds: float) -> None:
        with self._lock:
            self._seconds[kind] += seconds

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self._seconds)


CHILD_CPU = ChildCpuLedger()


def usage_seconds(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def own_cpu_seconds() -> float:
    """CPU seconds this process has used so far, all of its threads together."""
    return usage_seconds(resource.getrusage(resource.RUSAGE_SELF))


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What each kind used between two snapshots, rounded to the microsecond."""
    return {
        kind: round(seconds - before.get(kind, 0.0), 6)
        for kind, seconds in after.items()
        if seconds - before.get(kind, 0.0) > 0
    }
