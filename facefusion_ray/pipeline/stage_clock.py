"""Wall time per pipeline stage (decode, detect, swap, encode, ...) for reports and benchmarks."""

import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


class StageClock:
    def __init__(self) -> None:
        self._seconds: defaultdict[str, float] = defaultdict(float)

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self._seconds[stage] += time.perf_counter() - started

    def add(self, stages: Mapping[str, float]) -> None:
        for stage, seconds in stages.items():
            self._seconds[stage] += seconds

    def snapshot(self) -> dict[str, float]:
        return {stage: round(seconds, 6) for stage, seconds in self._seconds.items()}
