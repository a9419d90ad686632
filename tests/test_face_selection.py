"""Face selection modes and orders, on synthetic faces and on the real group photo."""

from dataclasses import replace

import numpy as np
import pytest

from facefusion_ray.analysis.face import Face
from facefusion_ray.analysis.select import (
    FaceSelection,
    face_distance,
    select_faces,
    sort_faces,
)
from facefusion_ray.assets import fetch_asset
from facefusion_ray.assets.samples import T1_GROUP_PHOTO
from facefusion_ray.media.images import read_image


def synthetic_face(x: float, y: float, size: float, score: float) -> Face:
    return Face(
        bbox=np.array([x, y, x + size, y + size], dtype=np.float32),
        score=score,
        landmarks_5=np.zeros((5, 2), dtype=np.float32),
    )


FACES = [
    synthetic_face(100, 50, 40, 0.9),
    synthetic_face(10, 80, 80, 0.6),
    synthetic_face(200, 10, 20, 0.7),
]


@pytest.mark.parametrize(
    ("order", "expected_x"),
    [
        ("left-right", [10, 100, 200]),
        ("right-left", [200, 100, 10]),
        ("top-bottom", [200, 100, 10]),
        ("bottom-top", [10, 100, 200]),
        ("small-large", [200, 100, 10]),
        ("large-small", [10, 100, 200]),
        ("best-worst", [100, 200, 10]),
        ("worst-best", [10, 200, 100]),
    ],
)
def test_orders(order: str, expected_x: list[int]) -> None:
    assert [int(face.bbox[0]) for face in sort_faces(FACES, order)] == expected_x


def test_many_keeps_every_face_and_one_keeps_the_first_in_order() -> None:
    assert len(select_faces(FACES, FaceSelection(mode="many"))) == 3
    [chosen] = select_faces(FACES, FaceSelection(mode="one", order="left-right"))
    assert int(chosen.bbox[0]) == 10
    assert select_faces([], FaceSelection(mode="one")) == []


def test_face_distance_maps_cosine_onto_zero_to_one() -> None:
    unit = np.array([1.0, 0.0])
    assert face_distance(unit, unit) == 0.0
    assert face_distance(unit, -unit) == 1.0
    assert face_distance(unit, np.array([0.0, 1.0])) == 0.5


def test_reference_mode_needs_embeddings() -> None:
    with pytest.raises(ValueError, match="embedding"):
        select_faces(FACES, FaceSelection(mode="reference"), np.ones(128))


@pytest.mark.parametrize("position", range(6))
def test_reference_mode_picks_only_that_person_in_the_group_photo(
    detector, recognizer, position: int
) -> None:
    group = read_image(fetch_asset(T1_GROUP_PHOTO))
    faces = [
        replace(face, normed_embedding=recognizer.embed(group, face.landmarks_5)[1])
        for face in detector.detect(group)
    ]
    ordered = sort_faces(faces, "left-right")
    reference = ordered[position]
    selection = FaceSelection(mode="reference", order="left-right")
    chosen = select_faces(faces, selection, reference.normed_embedding)
    assert len(chosen) == 1
    assert np.array_equal(chosen[0].bbox, reference.bbox)


def test_auto_recognizer_is_facefusions_arcface_for_neural_swappers() -> None:
    from facefusion_ray.pipeline.model_plan import target_recognizer
    from facefusion_ray.settings import SwapSettings
    from facefusion_ray.zoo.manifest import load_manifest

    manifest = load_manifest()
    assert target_recognizer(SwapSettings(), manifest) == "sface"
    neural = SwapSettings(face_swapper_model="inswapper_128")
    assert target_recognizer(neural, manifest) == "arcface_w600k_r50"
    named = SwapSettings(face_swapper_model="inswapper_128", face_recognizer_model="sface")
    assert target_recognizer(named, manifest) == "sface"
