"""`--face-selector-mode identity-map`: source i replaces person i of the video."""

import logging
from collections.abc import Sequence

import numpy as np

from facefusion_ray.analysis.identities import cluster_people
from facefusion_ray.errors import NoFaceError
from facefusion_ray.inference.session_factory import SessionFactory
from facefusion_ray.media import MediaInfo, iter_frames
from facefusion_ray.media.frame_sampling import sample_frame_indices
from facefusion_ray.media.remote_media import MediaSource
from facefusion_ray.pipeline.model_loading import load_analyser, load_recognizer
from facefusion_ray.pipeline.model_plan import ModelPlan, Role
from facefusion_ray.pipeline.sources import IdentityMap, SourceIdentity
from facefusion_ray.settings import SwapSettings

logger = logging.getLogger(__name__)

# Frames sampled across the video to find its people: enough to see everyone who matters,
# few enough that the driver's analysis stays a small part of a job.
SAMPLED_FRAMES = 24


def find_target_people(
    target: MediaSource,
    info: MediaInfo,
    settings: SwapSettings,
    plan: ModelPlan,
    sessions: SessionFactory,
) -> list[np.ndarray]:
    """Centroids of the people seen in sampled frames, most seen first."""
    detector = load_analyser(plan, settings, sessions)
    recognizer = load_recognizer(plan.require(Role.TARGET_RECOGNIZER).spec, sessions)
    sightings: list[tuple[np.ndarray, float]] = []
    for number in sample_frame_indices(info.frame_count, SAMPLED_FRAMES):
        frame = next(iter(iter_frames(target, number, 1, info)))
        for face in sorted(detector.detect(frame), key=lambda face: float(face.bbox[0])):
            sightings.append((recognizer.embed(frame, face.landmarks_5)[1], float(face.bbox[0])))
    people = cluster_people(sightings, settings.face_selector.reference_face_distance)
    logger.info(
        "found %d people in %s (sightings: %s)",
        len(people),
        target,
        ", ".join(str(person.sightings) for person in people),
    )
    return [person.centroid for person in people]


def build_identity_map(
    target: MediaSource,
    info: MediaInfo,
    settings: SwapSettings,
    plan: ModelPlan,
    sessions: SessionFactory,
    sources: Sequence[SourceIdentity],
) -> IdentityMap:
    people = find_target_people(target, info, settings, plan, sessions)
    if not people:
        raise NoFaceError(f"no people found in {target} to map the sources onto")
    mapped = min(len(people), len(sources))
    if len(sources) > len(people):
        logger.warning(
            "%d sources but only %d people in %s: the last sources are unused",
            len(sources),
            len(people),
            target,
        )
    return IdentityMap(np.stack(people[:mapped]), tuple(sources[:mapped]))
