"""The classic swapper on real faces: t1.jpg (six people) with Tom Hanks as the source."""

import cv2
import numpy as np
import pytest

from facefusion_ray.analysis.select import largest_face
from facefusion_ray.assets import fetch_asset
from facefusion_ray.assets.samples import T1_GROUP_PHOTO, TOM_HANKS_PHOTO
from facefusion_ray.media.images import read_image
from facefusion_ray.processors.classic_swap import ClassicSwapper, align_source
from facefusion_ray.processors.masks import face_outline_mask


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def dilated_box_mask(shape: tuple[int, ...], boxes: list[np.ndarray], grow: float) -> np.ndarray:
    mask = np.zeros(shape[:2], dtype=bool)
    for x1, y1, x2, y2 in boxes:
        pad_x, pad_y = (x2 - x1) * grow, (y2 - y1) * grow
        mask[
            max(0, int(y1 - pad_y)) : int(y2 + pad_y) + 1,
            max(0, int(x1 - pad_x)) : int(x2 + pad_x) + 1,
        ] = True
    return mask


@pytest.fixture(scope="module")
def group_swap(detector):
    group = read_image(fetch_asset(T1_GROUP_PHOTO))
    source = read_image(fetch_asset(TOM_HANKS_PHOTO))
    source_face = largest_face(detector.detect(source))
    assert source_face is not None
    swapper = ClassicSwapper(align_source(source, source_face))
    faces = detector.detect(group)
    swapped = group.copy()
    regions = [swapper.swap(swapped, face) for face in faces]
    return group, swapped, source, source_face, faces, regions


def test_every_face_in_the_group_photo_is_swapped(group_swap) -> None:
    group, swapped, _, _, faces, regions = group_swap
    assert len(faces) == 6
    for face, region in zip(faces, regions, strict=True):
        x1, y1, x2, y2 = face.bbox.astype(int)
        before = group[y1:y2, x1:x2].astype(np.int16)
        after = swapped[y1:y2, x1:x2].astype(np.int16)
        assert np.abs(after - before).mean() > 8, "face region barely changed"
        assert not region.is_empty


def test_pixels_outside_the_dilated_face_boxes_are_untouched(group_swap) -> None:
    group, swapped, _, _, faces, _ = group_swap
    near_faces = dilated_box_mask(group.shape, [face.bbox for face in faces], grow=0.5)
    assert np.array_equal(group[~near_faces], swapped[~near_faces])
    # And the change stays inside the faces' own region: most of each box's
    # surroundings (beyond a small margin) are untouched.
    assert (group != swapped).any(axis=2).sum() < near_faces.sum()


def test_swapped_faces_look_more_like_the_source(group_swap, recognizer) -> None:
    group, swapped, source, source_face, faces, _ = group_swap
    source_embedding = recognizer.embed(source, source_face.landmarks_5)[1]
    for face in faces:
        before = cosine(recognizer.embed(group, face.landmarks_5)[1], source_embedding)
        after = cosine(recognizer.embed(swapped, face.landmarks_5)[1], source_embedding)
        assert after > before + 0.2, f"similarity to source only {before:.2f} -> {after:.2f}"


def test_face_mask_covers_the_inner_face_but_not_the_forehead() -> None:
    mask = face_outline_mask(256)
    eye_row, mouth_row, hairline_row = int(0.46 * 256), int(0.82 * 256), int(0.15 * 256)
    assert mask[eye_row, 128] > 0.99 and mask[mouth_row, 128] > 0.99
    assert mask[hairline_row].max() == 0.0
    assert mask[:, :10].max() == 0.0 and mask[:, -10:].max() == 0.0


def test_swapping_a_face_onto_itself_changes_little(detector) -> None:
    group = read_image(fetch_asset(T1_GROUP_PHOTO))
    face = largest_face(detector.detect(group))
    assert face is not None
    swapped = group.copy()
    region = ClassicSwapper(align_source(group, face)).swap(swapped, face)
    patch = (slice(region.y0, region.y1), slice(region.x0, region.x1))
    psnr = cv2.PSNR(group[patch], swapped[patch])
    assert psnr > 30, f"self-swap should be near identity, PSNR {psnr:.1f} dB"
