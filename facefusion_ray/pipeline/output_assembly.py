"""Where a render's segments live until they become the output, and the final assembly."""

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from facefusion_ray.media import MediaInfo, assemble_video
from facefusion_ray.media.remote_media import MediaSource
from facefusion_ray.pipeline.stage_clock import StageClock
from facefusion_ray.pipeline.swap_report import SwapReport


@contextmanager
def segment_folder(output: Path) -> Iterator[Path]:
    """A hidden folder beside the output for its segments, removed however the render ends."""
    folder = Path(tempfile.mkdtemp(prefix=f".{output.name}.segments-", dir=output.parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def assemble_output(
    segments: Sequence[Path],
    target: MediaSource | None,
    info: MediaInfo,
    output: Path,
    report: SwapReport,
) -> None:
    """Concatenate the segments with the target's audio into `output`; timed in the report."""
    if info.fps is None:
        raise ValueError("assembling needs a video with a frame rate")
    clock = StageClock()
    with clock.measure("assemble"):
        assemble_video(segments, info.fps, output, audio_source=target if info.has_audio else None)
    report.add_stage_seconds(clock.snapshot())
