"""Five-point face templates (FaceFusion's warp templates) and the similarity fit to them.

Templates are normalised to the unit square: multiply by the crop size to get pixels. Points are
in the 5-landmark order [right eye, left eye, nose tip, right mouth corner, left mouth corner]
(the subject's right eye is on the image's left).
"""

from __future__ import annotations

import functools

import numpy as np

# InsightFace's ArcFace reference points for a 112x112 crop; also what OpenCV's SFace uses.
_ARCFACE_112_PIXELS = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)

WARP_TEMPLATES: dict[str, np.ndarray] = {
    "arcface_112_v1": np.array(
        [
            [0.35473214, 0.45658929],
            [0.64526786, 0.45658929],
            [0.50000000, 0.61154464],
            [0.37913393, 0.77687500],
            [0.62086607, 0.77687500],
        ]
    ),
    "arcface_112_v2": _ARCFACE_112_PIXELS / 112.0,
    "arcface_128": np.array(
        [
            [0.36167656, 0.40387734],
            [0.63696719, 0.40235469],
            [0.50019687, 0.56044219],
            [0.38710391, 0.72160547],
            [0.61507734, 0.72034453],
        ]
    ),
    "dfl_whole_face": np.array(
        [
            [0.35342266, 0.39285716],
            [0.62797622, 0.39285716],
            [0.48660713, 0.54017860],
            [0.38839287, 0.68750011],
            [0.59821427, 0.68750011],
        ]
    ),
    "ffhq_512": np.array(
        [
            [0.37691676, 0.46864664],
            [0.62285697, 0.46912813],
            [0.50123859, 0.61331904],
            [0.39308822, 0.72541100],
            [0.61150205, 0.72490465],
        ]
    ),
    "mtcnn_512": np.array(
        [
            [0.36562865, 0.46733799],
            [0.63305391, 0.46585885],
            [0.50019127, 0.61942959],
            [0.39032951, 0.77598822],
            [0.61178945, 0.77476328],
        ]
    ),
    "styleganex_384": np.array(
        [
            [0.42353745, 0.52289879],
            [0.57725008, 0.52319972],
            [0.50123859, 0.61331904],
            [0.43364461, 0.68337652],
            [0.57015325, 0.68306005],
        ]
    ),
}


CropSize = int | tuple[int, int]


def template_points(template_name: str, crop_size: CropSize) -> np.ndarray:
    """The template in pixels of a square crop of side `crop_size` or a (width, height) crop."""
    try:
        template = WARP_TEMPLATES[template_name]
    except KeyError:
        raise ValueError(
            f"unknown warp template {template_name!r}; known: {sorted(WARP_TEMPLATES)}"
        ) from None
    width, height = (crop_size, crop_size) if isinstance(crop_size, int) else crop_size
    return template * np.array([width, height], dtype=np.float64)


def estimate_similarity(
    landmarks: np.ndarray, template_name: str, crop_size: CropSize
) -> np.ndarray:
    """2x3 matrix of the least-squares similarity (rotation, uniform scale, translation)
    that maps `landmarks` (5, 2) onto the template in a crop of `crop_size` pixels.

    Closed-form Umeyama fit, as OpenCV's FaceRecognizerSF.alignCrop computes it; FaceFusion's
    estimateAffinePartial2D(RANSAC, threshold 100) converges to the same least-squares fit.
    The last fits are remembered: a frame's faces are fitted once to find the region they
    reach and again to be cut out.
    """
    source = np.ascontiguousarray(landmarks, dtype=np.float64).reshape(-1, 2)
    return _remembered_fit(source.tobytes(), template_name, crop_size).copy()


@functools.lru_cache(maxsize=64)
def _remembered_fit(landmark_bytes: bytes, template_name: str, crop_size: CropSize) -> np.ndarray:
    source = np.frombuffer(landmark_bytes, dtype=np.float64).reshape(-1, 2)
    target = template_points(template_name, crop_size)
    if source.shape != target.shape:
        raise ValueError(f"expected {target.shape[0]} landmarks, got {source.shape[0]}")
    source_mean = source.mean(axis=0)
    target_mean = target.mean(axis=0)
    source_centered = source - source_mean
    target_centered = target - target_mean
    covariance = target_centered.T @ source_centered / len(source)
    left, singular_values, right_t = np.linalg.svd(covariance)
    reflection = np.ones(2)
    if np.linalg.det(covariance) < 0:
        reflection[1] = -1.0
    rotation = left @ np.diag(reflection) @ right_t
    source_variance = source_centered.var(axis=0).sum()
    if source_variance == 0:
        raise ValueError("landmarks are all at one point")
    scale = float(singular_values @ reflection) / source_variance
    translation = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, translation[:, None]])
