"""Turning source images into the identity that the swapper pastes."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from facefusion_ray.analysis.select import largest_face
from facefusion_ray.analysis.yunet import YuNetDetector
from facefusion_ray.errors import NoFaceError
from facefusion_ray.media.images import read_image
from facefusion_ray.processors.classic_swap import AlignedSource, align_source

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceIdentity:
    aligned: AlignedSource
    image_path: str
    faces_in_image: int


def prepare_source_identity(paths: Sequence[Path], detector: YuNetDetector) -> SourceIdentity:
    """Checks every source has a face and aligns the one the classic swapper pastes.

    The classic swapper pastes pixels, so it cannot blend several photos into one
    identity: it uses the largest face of the first source and says so.
    """
    if not paths:
        raise NoFaceError("no source image given")
    chosen: SourceIdentity | None = None
    for path in paths:
        image = read_image(path)
        faces = detector.detect(image)
        face = largest_face(faces)
        if face is None:
            raise NoFaceError(f"no face found in source image: {path}")
        if len(faces) > 1:
            logger.warning("source %s has %d faces; using the largest", path, len(faces))
        if chosen is None:
            chosen = SourceIdentity(align_source(image, face), str(path), len(faces))
    assert chosen is not None
    if len(paths) > 1:
        logger.info("classic swapper uses the face of the first source, %s", chosen.image_path)
    return chosen
