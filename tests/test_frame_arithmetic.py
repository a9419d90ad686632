"""The per-frame arithmetic that was rewritten for speed gives the bytes of the plain formulas:
paste-back's blend, the model crops' tensors and pixels, YuNet's kept letterbox canvas and the
classic swapper's colour transfer."""

import cv2
import numpy as np
import pytest

from facefusion_ray.analysis import YuNetDetector
from facefusion_ray.assets import fetch_asset
from facefusion_ray.assets.samples import T1_GROUP_PHOTO
from facefusion_ray.inference import ModelSession
from facefusion_ray.processors.color_transfer import (
    MAX_SPREAD_GAIN,
    MIN_SPREAD_GAIN,
    ColourReference,
    transfer_lab_statistics,
)
from facefusion_ray.processors.model_crops import to_pixels, to_tensor
from facefusion_ray.processors.paste_back import mask_bounds, paste_back
from facefusion_ray.zoo import resolve_model_path
from facefusion_ray.zoo.model_spec import TensorSpec

SIZE = 64
SPECS = {
    "inswapper": TensorSpec("x", (1, 3, SIZE, SIZE), "float32", "NCHW", "RGB", 1 / 255),
    "normalised_bgr": TensorSpec(
        "x", (1, 3, SIZE, SIZE), "float32", "NCHW", "BGR", 1 / 255, (0.5, 0.4, 0.3), (0.5, 0.6, 0.7)
    ),
    "raw": TensorSpec("x", (1, 3, SIZE, SIZE), "float32", "NCHW", "RGB"),
}


@pytest.mark.parametrize("crop_dtype", [np.float32, np.uint8])
def test_paste_back_blends_as_original_times_one_minus_weight_plus_crop_times_weight(
    crop_dtype: type,
) -> None:
    rng = np.random.default_rng(5)
    frame = rng.integers(0, 256, (120, 140, 3), dtype=np.uint8)
    crop = (
        rng.uniform(-20, 280, (SIZE, SIZE, 3))
        if crop_dtype is np.float32
        else rng.integers(0, 256, (SIZE, SIZE, 3))
    ).astype(crop_dtype)
    mask = np.clip(rng.uniform(-0.5, 1.5, (SIZE, SIZE)), 0, 1).astype(np.float32)
    angle = np.deg2rad(17)
    frame_to_crop = np.array(
        [
            [0.9 * np.cos(angle), -0.9 * np.sin(angle), -20.0],
            [0.9 * np.sin(angle), 0.9 * np.cos(angle), -30.0],
        ]
    )
    pasted = frame.copy()
    region = paste_back(pasted, crop, mask, frame_to_crop, mask_bounds(mask))

    crop_to_region = cv2.invertAffineTransform(frame_to_crop)
    crop_to_region[:, 2] -= (region.x0, region.y0)
    size = (region.x1 - region.x0, region.y1 - region.y0)
    warped = cv2.warpAffine(
        crop, crop_to_region, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    ).astype(np.float32)
    weight = cv2.warpAffine(mask, crop_to_region, size, flags=cv2.INTER_LINEAR)[..., None]
    original = frame[region.y0 : region.y1, region.x0 : region.x1].astype(np.float32)
    expected = np.clip(original * (1 - weight) + warped * weight + 0.5, 0, 255).astype(np.uint8)
    assert 0 < (pasted != frame).mean() < 1
    assert np.array_equal(pasted[region.y0 : region.y1, region.x0 : region.x1], expected)
    outside = np.ones(frame.shape[:2], bool)
    outside[region.y0 : region.y1, region.x0 : region.x1] = False
    assert np.array_equal(pasted[outside], frame[outside])


@pytest.mark.parametrize("name", sorted(SPECS))
def test_tensors_and_pixels_follow_the_specs_relation(name: str) -> None:
    spec = SPECS[name]
    rng = np.random.default_rng(8)
    crop = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    scale = spec.pixel_scale or 1.0
    mean = np.asarray(spec.mean or (0, 0, 0), np.float32)
    std = np.asarray(spec.std or (1, 1, 1), np.float32)
    ordered = crop[:, :, ::-1] if spec.channel_order == "RGB" else crop

    expected = ((ordered.astype(np.float32) * scale - mean) / std).transpose(2, 0, 1)
    tensor = to_tensor(crop, spec)
    assert tensor.dtype == np.float32 and tensor.flags.c_contiguous
    assert np.array_equal(tensor, expected)

    output = (tensor + rng.normal(0, 0.5, tensor.shape)).astype(np.float32)  # some out of range
    model_output = output.copy()
    values = np.clip((output.transpose(1, 2, 0) * std + mean) / scale, 0, 255)
    expected_pixels = values[:, :, ::-1] if spec.channel_order == "RGB" else values
    pixels = to_pixels(output, spec)
    assert pixels.dtype == np.float32 and pixels.flags.c_contiguous
    assert np.array_equal(pixels, expected_pixels)
    assert np.array_equal(output, model_output)  # the session's output is left as it was


def test_yunet_letterbox_canvas_kept_between_frames_holds_only_the_current_frame() -> None:
    # The canvas is reused: after a photo of six faces, a smaller blank frame must not see
    # what is left of the photo beyond its own area.
    photo = cv2.imread(str(fetch_asset(T1_GROUP_PHOTO)))
    blank = np.full((200, 300, 3), 128, np.uint8)
    session = ModelSession(resolve_model_path("yunet"), "yunet")
    detector = YuNetDetector(session)

    first = detector.detect(photo)
    assert len(first) >= 4
    assert detector.detect(blank) == YuNetDetector(session).detect(blank) == []
    again = detector.detect(photo)
    assert [face.score for face in again] == [face.score for face in first]
    assert all(np.array_equal(a.bbox, b.bbox) for a, b in zip(again, first, strict=True))


def test_colour_transfer_gives_the_plain_formulas_bytes() -> None:
    rng = np.random.default_rng(11)
    source = rng.integers(0, 256, (96, 96, 3), np.uint8)
    mask = np.zeros((96, 96), np.float32)
    mask[20:80, 16:76] = 1.0
    mask = cv2.GaussianBlur(mask, (9, 9), 0)  # feathered, as the classic swapper's
    reference = ColourReference.measure(source, mask)
    assert (reference.painted.start, reference.painted.stop) == (15, 85)
    for seed in range(5):
        target = np.random.default_rng(seed).integers(0, 256, (96, 96, 3), np.uint8)
        target[..., seed % 3] //= 2  # a colour cast to move the statistics towards

        def lab(image: np.ndarray) -> np.ndarray:
            return cv2.cvtColor(image.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_BGR2LAB)

        target_mean, target_std = (
            value.reshape(3) for value in cv2.meanStdDev(lab(target), mask=reference.selection)
        )
        gain = np.clip(target_std / (reference.std + 1e-6), MIN_SPREAD_GAIN, MAX_SPREAD_GAIN)
        offset = target_mean - reference.mean * gain
        matched = lab(source) * gain.astype(np.float32) + offset.astype(np.float32)
        plain = np.clip(cv2.cvtColor(matched, cv2.COLOR_LAB2BGR) * 255.0 + 0.5, 0, 255)
        plain = plain.astype(np.uint8)
        recoloured = transfer_lab_statistics(reference, target)
        rows = reference.painted
        assert np.array_equal(recoloured[rows], plain[rows])
        # Outside those rows the crop is left as it was: a paste-back never reads there.
        frame = np.random.default_rng(100 + seed).integers(0, 256, (160, 200, 3), np.uint8)
        frame_to_crop = cv2.getRotationMatrix2D((90.0, 70.0), 17.0 + seed, 0.8)
        pasted = [frame.copy(), frame.copy()]
        for image, crop in zip(pasted, (recoloured, plain), strict=True):
            paste_back(image, crop, mask, frame_to_crop, mask_bounds(mask))
        assert np.array_equal(pasted[0], pasted[1]) and not np.array_equal(pasted[0], frame)
