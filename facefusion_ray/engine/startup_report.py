"""How much of a job was start-up, and what it could reuse: the Ray, its actors, their sessions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

# "warm" in a command forked by the kept Ray's warm driver (cli/warm_driver.py), whose imports
# were done before the job.
_driver = "own process"


def mark_warm_driver() -> None:
    global _driver
    _driver = "warm"


def driver_kind() -> str:
    """Where this process's jobs run their driver: "warm" or "own process"."""
    return _driver


@dataclass
class StartupReport:
    # Where the job's driver ran: "warm" (forked by the kept Ray's warm driver, its imports
    # already done) or "own process" (which imported everything first).
    driver: str = field(default_factory=driver_kind)
    # How the job got its Ray: started (a private one), joined, kept (`facefusion-ray ray
    # start`), or already connected (a script that called ray.init itself).
    ray: str = ""
    ray_seconds: float = 0.0
    # From asking for the pool until it was placed and answered (creating or finding actors).
    actors_seconds: float = 0.0
    # Opening ONNX Runtime sessions during this job, the slowest actor's (they open at once).
    sessions_seconds: float = 0.0
    # Actors that served an earlier job (warm, with their sessions), and actors new to it.
    actors_reused: int = 0
    actors_created: int = 0
    # Sessions the job's actors opened during the job (0 when warm actors had them all).
    sessions_opened: int = 0
    # The actors outlive the job (the Ray keeps idle actors), and how many idle actors of other
    # models it ended to make room.
    actors_kept: bool = False
    actors_retired: int = 0

    @property
    def seconds(self) -> float:
        return round(self.ray_seconds + self.actors_seconds + self.sessions_seconds, 3)

    def count_actors(
        self, ready_answers: Sequence[Mapping[str, object]], sessions_after: Mapping[int, object]
    ) -> None:
        """Fill the actor and session figures from what each actor said when it was ready and
        its `sessions_opened()` at the end of the job (by pid)."""
        self.actors_reused = sum(1 for answer in ready_answers if _number(answer, "jobs_before"))
        self.actors_created = len(ready_answers) - self.actors_reused
        opened, slowest = 0, 0.0
        for answer in ready_answers:
            after = sessions_after.get(int(_number(answer, "pid")))
            if not isinstance(after, tuple):
                continue
            # An actor that dropped its models (one was re-pinned) counts from zero again.
            before = (_number(answer, "sessions_opened"), _number(answer, "session_seconds"))
            if after[0] < before[0]:
                before = (0.0, 0.0)
            opened += int(after[0] - before[0])
            slowest = max(slowest, float(after[1] - before[1]))
        self.sessions_opened = opened
        self.sessions_seconds = round(slowest, 3)

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "seconds": self.seconds}

    def line(self) -> str:
        actors = f"{self.actors_reused} workers reused, {self.actors_created} started"
        return (
            f"start-up {self.seconds:.2f} s ({self.driver} driver): Ray {self.ray} in "
            f"{self.ray_seconds:.2f} s, "
            f"{actors} in {self.actors_seconds:.2f} s, {self.sessions_opened} sessions opened "
            f"in {self.sessions_seconds:.2f} s"
        )


def _number(answer: Mapping[str, object], name: str) -> float:
    value = answer.get(name, 0)
    return float(value) if isinstance(value, int | float) else 0.0
