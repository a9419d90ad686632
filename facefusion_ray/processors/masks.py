"""Face masks drawn in aligned-crop space, shaped by the landmark template."""

import cv2
import numpy as np

# Outline of the inner face (brows to chin, cheek to cheek) in the normalised
# arcface_112_v2 template frame, where the eyes sit at y~0.46 and the mouth
# corners at y~0.82. Keeping the top edge just above the brows stops the
# source's forehead and hair from bleeding into the target.
FACE_OUTLINE_TEMPLATE = np.array(
    [
        (0.22, 0.33),
        (0.35, 0.28),
        (0.50, 0.27),
        (0.65, 0.28),
        (0.78, 0.33),
        (0.85, 0.48),
        (0.84, 0.65),
        (0.78, 0.82),
        (0.66, 0.95),
        (0.50, 1.00),
        (0.34, 0.95),
        (0.22, 0.82),
        (0.16, 0.65),
        (0.15, 0.48),
    ],
    dtype=np.float32,
)


def face_outline_mask(crop_size: int, feather: float = 0.08) -> np.ndarray:
    """Soft mask (float32, 0..1) of the inner face for a crop of `crop_size`.

    The polygon is eroded by the blur radius before blurring, so the feathered
    edge fades out inside the outline rather than spilling past it.
    """
    hard = np.zeros((crop_size, crop_size), dtype=np.uint8)
    polygon = np.round(FACE_OUTLINE_TEMPLATE * crop_size).astype(np.int32)
    cv2.fillPoly(hard, [polygon], 255)
    radius = max(1, round(crop_size * feather / 2))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    eroded = cv2.erode(hard, kernel)
    soft = cv2.GaussianBlur(eroded.astype(np.float32) / 255.0, (0, 0), sigmaX=radius / 2)
    return np.clip(soft, 0.0, 1.0)


def coverage_mask(source_shape: tuple[int, int], affine: np.ndarray, crop_size: int) -> np.ndarray:
    """Where an aligned crop has real source pixels (1) rather than border fill (0)."""
    ones = np.full(source_shape, 255, dtype=np.uint8)
    warped = cv2.warpAffine(
        ones, affine, (crop_size, crop_size), flags=cv2.INTER_LINEAR, borderValue=0
    )
    # Pull the edge in and soften it, so the end of the source photo never shows as a seam.
    margin = max(2, crop_size // 32)
    warped = cv2.erode(warped, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    soft = cv2.GaussianBlur(warped.astype(np.float32) / 255.0, (0, 0), sigmaX=margin)
    return soft * (warped > 0)
