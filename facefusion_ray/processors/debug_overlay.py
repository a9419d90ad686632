"""Drawing what the analysis saw onto a frame, for inspection (FaceFusion's face debugger)."""

from collections.abc import Sequence

import cv2
import numpy as np

from facefusion_ray.analysis.face import Face

SELECTED_COLOUR = (0, 255, 0)  # BGR: faces that were swapped
IGNORED_COLOUR = (0, 0, 255)  # faces that were detected but not selected
LANDMARK_COLOUR = (0, 255, 255)


def draw_debug_overlay(frame: np.ndarray, faces: Sequence[Face], selected: Sequence[Face]) -> None:
    """Boxes, 5-point landmarks and detector scores, green when selected, red otherwise."""
    selected_boxes = [face.bbox for face in selected]
    thickness = max(1, round(min(frame.shape[:2]) / 360))
    for face in faces:
        chosen = any(np.array_equal(face.bbox, box) for box in selected_boxes)
        colour = SELECTED_COLOUR if chosen else IGNORED_COLOUR
        x1, y1, x2, y2 = np.round(face.bbox).astype(int).tolist()
        cv2.rectangle(frame, (x1, y1), (x2, y2), colour, thickness)
        for x, y in np.round(face.landmarks_5).astype(int).tolist():
            cv2.circle(frame, (x, y), thickness + 1, LANDMARK_COLOUR, -1)
        label = f"{face.score:.2f}" + (" swap" if chosen else "")
        cv2.putText(
            frame,
            label,
            (x1, max(0, y1 - 4 * thickness)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * thickness,
            colour,
            thickness,
            cv2.LINE_AA,
        )
