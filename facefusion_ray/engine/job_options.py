"""What a whole job shares: the actor pool, the stores, and how it reports."""

from dataclasses import dataclass, field

from facefusion_ray.inference.execution import ExecutionConfig
from facefusion_ray.pipeline.review_probe import ReviewPlan


@dataclass(frozen=True)
class JobOptions:
    """What the whole job shares: the actor pool, the stores, and how it reports."""

    workers: int = 2
    threads_per_worker: int = 1
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    address: str | None = None
    # Where segments wait for assembly (None: this machine's cache folder); shared storage
    # (s3://...) when the workers are on other machines than the driver.
    work_store: str | None = None
    storage_options: tuple[tuple[str, str], ...] = ()
    show_progress: bool = True
    # Render even when the output of the same inputs is already published.
    force: bool = False
    # What the actors measure of each render's frames for an A/B review (None: nothing).
    review: ReviewPlan | None = None

    @property
    def local_ray_cpus(self) -> int:
        """The CPUs a local Ray started for the job gets."""
        return self.workers * self.threads_per_worker
