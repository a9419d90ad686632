"""The reference face of `--face-selector-mode reference`: found once by the driver."""

import logging

import numpy as np

from facefusion_ray.analysis.select import face_at_position, sort_faces
from facefusion_ray.errors import NoFaceError
from facefusion_ray.inference.session_factory import SessionFactory
from facefusion_ray.media import MediaInfo, iter_frames
from facefusion_ray.media.remote_media import MediaSource
from facefusion_ray.pipeline.model_loading import load_analyser, load_recognizer
from facefusion_ray.pipeline.model_plan import ModelPlan, Role
from facefusion_ray.settings import SwapSettings

logger = logging.getLogger(__name__)


def reference_embedding_for(
    target: MediaSource,
    info: MediaInfo,
    settings: SwapSettings,
    plan: ModelPlan,
    sessions: SessionFactory,
) -> np.ndarray | None:
    """Normed embedding of the face at the reference position of the reference frame.

    None unless the selector mode is `reference`; NoFaceError when that frame has no face.
    """
    selection = settings.face_selector
    if not selection.needs_embeddings:
        return None
    frame_number = min(settings.reference_frame_number, info.frame_count - 1)
    frame = next(iter(iter_frames(target, frame_number, 1, info)))
    faces = sort_faces(load_analyser(plan, settings, sessions).detect(frame), selection.order)
    face = face_at_position(faces, selection.reference_face_position)
    if face is None:
        raise NoFaceError(f"no reference face in frame {frame_number} of {target}")
    logger.info(
        "reference face: frame %d, position %d of %d (%s), box %s",
        frame_number,
        min(selection.reference_face_position, len(faces) - 1),
        len(faces),
        selection.order,
        np.round(face.bbox).astype(int).tolist(),
    )
    recognizer = load_recognizer(plan.require(Role.TARGET_RECOGNIZER).spec, sessions)
    return recognizer.embed(frame, face.landmarks_5)[1]
