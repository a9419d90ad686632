"""Copy the sample media into examples/videos and examples/faces, where the example specs
look for them: `.venv/bin/python examples/get_samples.py`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent


def copy_samples(destination: Path = EXAMPLES) -> list[Path]:
    """Build the sample media (cached) and copy it under destination; returns the copies."""
    from facefusion_ray.sample_media import build_sample_media

    media = build_sample_media()
    placed = [
        (media.target_video, destination / "videos"),
        (media.source_tom_hanks, destination / "faces"),
        (media.source_astronaut, destination / "faces"),
    ]
    copies = []
    for path, folder in placed:
        folder.mkdir(parents=True, exist_ok=True)
        copies.append(Path(shutil.copyfile(path, folder / path.name)))
    return copies


if __name__ == "__main__":
    for copy in copy_samples():
        print(copy)
    sys.exit(0)
