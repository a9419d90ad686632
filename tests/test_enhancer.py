"""The face enhancer (GFPGAN 1.4's interface) on generated stand-in models.

No real weights exist here: each stand-in has the real model's tensor names and shapes and
computes output = input * gain + shift per channel, so gain 1 / shift 0 gives the crop back and
gain 0 paints the whole crop one colour.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from facefusion_ray.analysis.face import Face
from facefusion_ray.analysis.templates import template_points
from facefusion_ray.assets import fetch_asset
from facefusion_ray.assets.samples import T1_GROUP_PHOTO
from facefusion_ray.inference.sessions import ModelSession
from facefusion_ray.processors.enhancer import DEFAULT_BLEND, FaceEnhancer
from facefusion_ray.processors.paste_back import Region
from facefusion_ray.zoo.manifest import ModelSpec, get_model_spec
from tests.reach_checks import assert_stays_within_reach
from tests.standin_models import save_standin_model

MODEL_ID = "gfpgan_1.4"
# Model values (RGB, -1..1) of the constant stand-in's colour, and the same colour as BGR pixels.
CONSTANT_RGB_VALUES = (0.6, -0.2, -0.6)
CONSTANT_BGR_PIXELS = np.array([51.0, 102.0, 204.0])

RgbValues = tuple[float, float, float]


def affine_enhancer(spec: ModelSpec, path: Path, gain: float, shift: RgbValues) -> Path:
    """A stand-in with `spec`'s input and output computing input * gain + shift (per channel)."""
    tensor_shape = list(spec.inputs[0].shape)
    nodes = [
        helper.make_node("Mul", [spec.inputs[0].name, "gain"], ["scaled"]),
        helper.make_node("Add", ["scaled", "shift"], [spec.outputs[0].name]),
    ]
    initializers = [
        numpy_helper.from_array(np.array(gain, np.float32), "gain"),
        numpy_helper.from_array(np.array(shift, np.float32).reshape(1, 3, 1, 1), "shift"),
    ]
    graph = helper.make_graph(
        nodes,
        f"{spec.model_id}_affine",
        [helper.make_tensor_value_info(spec.inputs[0].name, TensorProto.FLOAT, tensor_shape)],
        [helper.make_tensor_value_info(spec.outputs[0].name, TensorProto.FLOAT, tensor_shape)],
        initializers,
    )
    return save_standin_model(graph, path, spec.model_id, "affine, NOT the real model")


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return get_model_spec(MODEL_ID)


@pytest.fixture(scope="module")
def identity_session(spec: ModelSpec, tmp_path_factory: pytest.TempPathFactory) -> ModelSession:
    path = tmp_path_factory.mktemp("enhancer") / "identity.onnx"
    return ModelSession(affine_enhancer(spec, path, 1.0, (0.0, 0.0, 0.0)), MODEL_ID)


@pytest.fixture(scope="module")
def constant_session(spec: ModelSpec, tmp_path_factory: pytest.TempPathFactory) -> ModelSession:
    path = tmp_path_factory.mktemp("enhancer") / "constant.onnx"
    return ModelSession(affine_enhancer(spec, path, 0.0, CONSTANT_RGB_VALUES), MODEL_ID)


@pytest.fixture(scope="module")
def group_photo() -> np.ndarray:
    return cv2.imread(str(fetch_asset(T1_GROUP_PHOTO)))


@pytest.fixture(scope="module")
def group_faces(detector, group_photo: np.ndarray) -> list[Face]:
    faces = detector.detect(group_photo)
    assert len(faces) >= 3
    return faces


def psnr(first: np.ndarray, second: np.ndarray) -> float:
    error = np.mean((first.astype(np.float64) - second.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else 10 * np.log10(255.0**2 / error)


def outside(frame: np.ndarray, regions: list[Region]) -> np.ndarray:
    keep = np.ones(frame.shape[:2], dtype=bool)
    for region in regions:
        keep[region.y0 : region.y1, region.x0 : region.x1] = False
    return frame[keep]


def face_centre(face: Face, radius: int = 3) -> tuple[slice, slice]:
    """A small window around the nose tip: well inside the box mask's fully opaque part."""
    x, y = (round(float(v)) for v in face.landmarks_5[2])
    return slice(y - radius, y + radius + 1), slice(x - radius, x + radius + 1)


def test_default_blend_is_the_manifests(spec: ModelSpec) -> None:
    assert spec.parameters["blend"] == DEFAULT_BLEND == 80


@pytest.mark.parametrize("blend", [DEFAULT_BLEND, 100])
def test_identity_enhancer_gives_the_frame_back(
    blend: int,
    spec: ModelSpec,
    identity_session: ModelSession,
    group_photo: np.ndarray,
    group_faces: list[Face],
) -> None:
    enhancer = FaceEnhancer(identity_session, spec, blend=blend)
    frame = group_photo.copy()
    faces = group_faces[:3]
    regions = enhancer.enhance_batch(frame, faces)
    assert len(regions) == len(faces)
    for face, region in zip(faces, regions, strict=True):
        assert not region.is_empty
        x0, y0, x1, y1 = (int(v) for v in face.bbox)
        assert psnr(frame[y0:y1, x0:x1], group_photo[y0:y1, x0:x1]) > 35
    assert np.array_equal(outside(frame, regions), outside(group_photo, regions))


@pytest.mark.parametrize("blend", [0, 30, DEFAULT_BLEND, 100])
def test_constant_enhancer_moves_the_face_towards_its_colour_by_the_blend(
    blend: int,
    spec: ModelSpec,
    constant_session: ModelSession,
    group_photo: np.ndarray,
    group_faces: list[Face],
) -> None:
    enhancer = FaceEnhancer(constant_session, spec, blend=blend)
    frame = group_photo.copy()
    face = group_faces[0]
    region = enhancer.enhance(frame, face)
    if blend == 0:
        assert np.array_equal(frame, group_photo)
        return
    centre = face_centre(face)
    share = blend / 100
    expected = group_photo[centre].astype(np.float64) * (1 - share) + CONSTANT_BGR_PIXELS * share
    assert np.abs(frame[centre].astype(np.float64) - expected).max() <= 1.0
    assert np.array_equal(outside(frame, [region]), outside(group_photo, [region]))


def test_model_input_is_rgb_in_minus_one_to_one(spec: ModelSpec, tmp_path: Path) -> None:
    assert spec.template is not None
    session = ModelSession(affine_enhancer(spec, tmp_path / "id.onnx", 1.0, (0, 0, 0)), MODEL_ID)
    feeds: list[dict[str, np.ndarray]] = []
    run = session.run

    def recording_run(inputs):
        feeds.append(dict(inputs))
        return run(inputs)

    session.run = recording_run  # type: ignore[method-assign]
    landmarks = template_points(spec.template, spec.size) * 0.5 + 20
    face = Face(np.zeros(4, np.float32), 1.0, landmarks.astype(np.float32))
    frame = np.zeros((300, 300, 3), np.uint8)
    frame[:, :] = (0, 0, 255)  # pure red in BGR
    FaceEnhancer(session, spec).enhance(frame, face)
    [feed] = feeds
    values = feed[spec.inputs[0].name]
    assert values.shape == (1, 3, 512, 512) and values.dtype == np.float32
    assert np.allclose(values[0, 0], 1.0) and np.allclose(values[0, 1:], -1.0)


def test_rejects_a_blend_outside_zero_to_hundred(
    spec: ModelSpec, identity_session: ModelSession
) -> None:
    with pytest.raises(ValueError, match="blend"):
        FaceEnhancer(identity_session, spec, blend=101)


def test_the_enhancer_reads_and_writes_only_within_its_reach(
    spec: ModelSpec,
    identity_session: ModelSession,
    group_photo: np.ndarray,
    group_faces: list[Face],
) -> None:
    """What the planes path relies on: outside `reach` the frame may hold anything (the
    identity stand-in gives back whatever its crop read)."""
    enhancer = FaceEnhancer(identity_session, spec, blend=100)
    face = group_faces[0]
    assert_stays_within_reach(enhancer.reach, enhancer.enhance_batch, group_photo, face)
