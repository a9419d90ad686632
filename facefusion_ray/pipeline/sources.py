"""Turning source images into the identity the swapper applies."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facefusion_ray.analysis.protocols import FaceEmbedder, FaceFinder
from facefusion_ray.analysis.select import largest_face
from facefusion_ray.errors import NoFaceError
from facefusion_ray.media.images import read_image
from facefusion_ray.processors.classic_swap import AlignedSource, align_source

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceIdentity:
    """What a swapper needs of the sources: pixels for `classic`, an embedding for neural ones."""

    aligned: AlignedSource | None
    embedding: np.ndarray | None  # raw, averaged over every source image
    image_paths: tuple[str, ...]


@dataclass(frozen=True)
class IdentityMap:
    """Person i of the target (normed centroid i) is replaced by sources[i]."""

    centroids: np.ndarray  # (people, embedding size)
    sources: tuple[SourceIdentity, ...]


def prepare_source_identity(
    paths: Sequence[Path],
    detector: FaceFinder,
    embedder: FaceEmbedder | None = None,
) -> SourceIdentity:
    """Checks every source has a face and builds the identity from the largest one of each.

    With an `embedder` (neural swappers) the raw embeddings of all sources are averaged into
    one identity, as FaceFusion averages several photos of one person. Without one (the
    classic swapper, which pastes pixels and cannot blend photos) the first source is aligned.
    """
    if not paths:
        raise NoFaceError("no source image given")
    aligned: AlignedSource | None = None
    embeddings: list[np.ndarray] = []
    for path in paths:
        image = read_image(path, max_pixels=None)  # checked by prepare_render
        faces = detector.detect(image)
        face = largest_face(faces)
        if face is None:
            raise NoFaceError(f"no face found in source image: {path}")
        if len(faces) > 1:
            logger.warning("source %s has %d faces; using the largest", path, len(faces))
        if embedder is not None:
            embeddings.append(embedder.embed(image, face.landmarks_5)[0])
        elif aligned is None:
            aligned = align_source(image, face)
    if embedder is None and len(paths) > 1:
        logger.info("the classic swapper uses the face of the first source, %s", paths[0])
    if embeddings and len(embeddings) > 1:
        logger.info("averaged %d source faces into one identity", len(embeddings))
    average = np.mean(embeddings, axis=0).astype(np.float32) if embeddings else None
    return SourceIdentity(aligned, average, tuple(str(path) for path in paths))
