"""What a whole job shares: the actor pool, the stores, and how it reports."""

from dataclasses import dataclass, field

from facefusion_ray.inference.execution import ExecutionConfig


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
    # Frames per render whose swapped faces' landmarks are recorded (for A/B similarity), the
    # same frames `media.frame_sampling.sample_frame_indices` picks for a contact sheet.
    landmark_samples: int = 0
