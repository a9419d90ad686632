"""The debug overlay draws what the analysis saw, and costs nothing when it is off."""

import numpy as np

from facefusion_ray.analysis.face import Face
from facefusion_ray.analysis.select import FaceSelection
from facefusion_ray.assets import fetch_asset
from facefusion_ray.assets.samples import T1_GROUP_PHOTO, TOM_HANKS_PHOTO
from facefusion_ray.inference.execution import ExecutionConfig
from facefusion_ray.media.images import read_image
from facefusion_ray.pipeline.frame_pipeline import FramePipeline
from facefusion_ray.pipeline.job_models import JobModels
from facefusion_ray.pipeline.sources import prepare_source_identity
from facefusion_ray.pipeline.stage_clock import StageClock
from facefusion_ray.processors.debug_overlay import (
    IGNORED_COLOUR,
    SELECTED_COLOUR,
    draw_debug_overlay,
)
from facefusion_ray.settings import SwapSettings


def box_face(x: int, y: int) -> Face:
    return Face(
        bbox=np.array([x, y, x + 40, y + 40], dtype=np.float32),
        score=0.9,
        landmarks_5=np.full((5, 2), [x + 20, y + 20], dtype=np.float32),
    )


def test_selected_faces_are_green_and_the_others_red() -> None:
    frame = np.zeros((120, 200, 3), dtype=np.uint8)
    chosen, ignored = box_face(10, 40), box_face(120, 40)
    draw_debug_overlay(frame, [chosen, ignored], [chosen])
    assert tuple(frame[60, 10]) == SELECTED_COLOUR  # left edge of the chosen box
    assert tuple(frame[60, 120]) == IGNORED_COLOUR
    assert frame[100:, :].max() == 0  # nothing drawn far from the faces


def test_overlay_is_off_by_default_and_marks_the_swap_when_on(detector) -> None:
    group = read_image(fetch_asset(T1_GROUP_PHOTO))
    identity = prepare_source_identity([fetch_asset(TOM_HANKS_PHOTO)], detector)
    selection = FaceSelection(mode="one")
    plain, debug = group.copy(), group.copy()
    for settings, frame in (
        (SwapSettings(face_selector=selection), plain),
        (SwapSettings(face_selector=selection, debug_overlay=True), debug),
    ):
        models = JobModels(ExecutionConfig())
        pipeline = FramePipeline(
            settings,
            models.plan_for(settings),
            identity,
            StageClock(),
            models.sessions_for(settings),
        )
        pipeline.process(frame)
    green = np.all(debug == SELECTED_COLOUR, axis=2).sum()
    red = np.all(debug == IGNORED_COLOUR, axis=2).sum()
    assert green > 100 and red > 100  # one swapped face, five ignored ones
    assert np.all(plain == SELECTED_COLOUR, axis=2).sum() < green / 10
