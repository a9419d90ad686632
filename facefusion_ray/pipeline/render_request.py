"""One render of a job: a target, its sources, where the output goes and the options."""

from dataclasses import dataclass

from facefusion_ray.settings import SwapSettings


@dataclass(frozen=True)
class RenderRequest:
    """Targets, sources and outputs are local paths or object-store URLs (s3://...)."""

    target: str
    sources: tuple[str, ...]
    output: str
    settings: SwapSettings
    # How logs, the progress bar and the run report name this render.
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.output
