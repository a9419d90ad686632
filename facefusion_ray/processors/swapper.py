"""What the pipeline needs of a face swapper, whichever model (or none) is behind it."""

from typing import Protocol

import numpy as np

from facefusion_ray.analysis.face import Face
from facefusion_ray.processors.paste_back import Region


class FaceSwapper(Protocol):
    def swap_batch(self, frame: np.ndarray, faces: list[Face]) -> list[Region]:
        """Swap `faces` into `frame` in place; the regions that changed."""
        ...

    def reach(self, face: Face, frame_shape: tuple[int, ...]) -> Region:
        """The frame rectangle that swapping `face` reads and writes (nothing outside it)."""
        ...
