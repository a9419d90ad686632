"""Source faces for the A/B scenario: each face of the sample group photo in its own image."""

from pathlib import Path

from facefusion_ray.inference.execution import ExecutionConfig
from facefusion_ray.media.images import read_image, write_image_atomic
from facefusion_ray.pipeline.job_models import JobModels
from facefusion_ray.pipeline.model_loading import load_detector
from facefusion_ray.settings import SwapSettings

GROUP_FACES = 6
# Added on every side, as a share of the face box: the source detector needs the whole head.
MARGIN = 0.6


def crop_group_faces(group_photo: Path, folder: Path) -> list[Path]:
    """group_face_1.png ... group_face_6.png, left to right, each found again by YuNet."""
    settings, models = SwapSettings(), JobModels(ExecutionConfig())
    detector = load_detector(models.plan_for(settings), settings, models.sessions_for(settings))
    image = read_image(group_photo)
    faces = sorted(detector.detect(image), key=lambda face: float(face.bbox[0]))
    if len(faces) != GROUP_FACES:
        raise RuntimeError(f"expected {GROUP_FACES} faces in {group_photo}, found {len(faces)}")
    height, width = image.shape[:2]
    folder.mkdir(parents=True, exist_ok=True)
    crops = []
    for number, face in enumerate(faces, start=1):
        x1, y1, x2, y2 = (float(value) for value in face.bbox)
        margin_x, margin_y = (x2 - x1) * MARGIN, (y2 - y1) * MARGIN
        left, top = max(0, round(x1 - margin_x)), max(0, round(y1 - margin_y))
        right, bottom = min(width, round(x2 + margin_x)), min(height, round(y2 + margin_y))
        crop = image[top:bottom, left:right]
        if not detector.detect(crop):
            raise RuntimeError(f"face {number} of {group_photo} is not found again in its crop")
        path = folder / f"group_face_{number}.png"
        write_image_atomic(path, crop)
        crops.append(path)
    return crops
