"""One render of a job: a target, its sources, where the output goes and the options."""

from dataclasses import dataclass

from facefusion_ray.errors import SettingsError
from facefusion_ray.settings import SwapSettings
from facefusion_ray.storage.filesystem import redact
from facefusion_ray.storage.locations import same_location


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


def check_output_is_not_an_input(request: RenderRequest) -> None:
    """Raises SettingsError when the output names the target or a source, also through links:
    rendering would replace the footage it reads."""
    for location in (request.target, *request.sources):
        if same_location(request.output, location):
            raise SettingsError(
                redact(f"output {request.output} is the input {location}: it would be overwritten")
            )
