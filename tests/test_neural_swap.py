"""Neural swappers, ArcFace, emap, box and occlusion masks, on generated stand-in models.

No real weights exist here: every model below is a small generated ONNX file with the real
model's tensor names. The "identity" swapper stand-ins return their `target` input unchanged
(plus, where a test needs it, a term that follows the `source` input), so a swap must give the
frame back up to resampling.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from facefusion_ray.analysis.arcface import ArcFaceRecognizer
from facefusion_ray.analysis.face import Face
from facefusion_ray.analysis.templates import template_points
from facefusion_ray.assets import fetch_asset
from facefusion_ray.assets.samples import T1_GROUP_PHOTO
from facefusion_ray.inference.sessions import ModelSession
from facefusion_ray.processors.box_mask import create_box_mask
from facefusion_ray.processors.emap import inswapper_latent, read_emap
from facefusion_ray.processors.neural_swap import NeuralSwapper
from facefusion_ray.processors.occlusion import OcclusionMasker, combine_masks
from facefusion_ray.processors.paste_back import Region
from facefusion_ray.zoo.manifest import ModelSpec, get_model_spec
from facefusion_ray.zoo.preparation import get_recipe, write_prepared_variant
from tests.reach_checks import assert_stays_within_reach
from tests.standin_models import FP16_MAX_PIXEL_DIFFERENCE, build_standin, save_standin_model

SWAPPERS = ("inswapper_128", "hyperswap_1a_256", "simswap_256")


def identity_swapper(
    spec: ModelSpec, path: Path, *, batch: int | str = 1, source_gain: float = 0.0
) -> Path:
    """A stand-in with `spec`'s inputs and outputs whose first output is the target image
    (in the output's value convention) + source_gain * mean(source); inswapper's gets a random
    emap as its last initializer."""
    size = spec.size[0]
    nodes = [
        helper.make_node("ReduceMean", ["source"], ["source_mean"], axes=[1], keepdims=1),
        helper.make_node("Unsqueeze", ["source_mean", "spatial_axes"], ["source_shift"]),
        helper.make_node("Mul", ["source_shift", "source_gain"], ["scaled_shift"]),
        helper.make_node("Mul", ["target", "value_gain"], ["rescaled"]),
        helper.make_node("Add", ["rescaled", "value_shift"], ["image"]),
        helper.make_node("Add", ["image", "scaled_shift"], [spec.outputs[0].name]),
    ]
    value_gain, value_shift = value_conversion(spec)
    initializers = [
        numpy_helper.from_array(np.array([2, 3], np.int64), "spatial_axes"),
        numpy_helper.from_array(np.array(source_gain, np.float32), "source_gain"),
        numpy_helper.from_array(value_gain, "value_gain"),
        numpy_helper.from_array(value_shift, "value_shift"),
    ]
    shapes = {"source": [batch, 512], "target": [batch, 3, size, size]}
    outputs = [
        helper.make_tensor_value_info(spec.outputs[0].name, TensorProto.FLOAT, shapes["target"])
    ]
    for extra in spec.outputs[1:]:
        nodes.append(helper.make_node("ReduceMean", ["target"], [extra.name], axes=[1], keepdims=1))
        outputs.append(
            helper.make_tensor_value_info(extra.name, TensorProto.FLOAT, [batch, 1, size, size])
        )
    if "emap_shape" in spec.parameters:
        emap = np.random.default_rng(7).standard_normal((512, 512)).astype(np.float32) / 22.6
        initializers.append(numpy_helper.from_array(emap, "emap"))
    inputs = [
        helper.make_tensor_value_info(tensor.name, TensorProto.FLOAT, shapes[tensor.name])
        for tensor in spec.inputs
    ]
    graph = helper.make_graph(nodes, f"{spec.model_id}_identity", inputs, outputs, initializers)
    return save_standin_model(
        graph, path, spec.model_id, "identity, NOT the real model", metadata=True
    )


def value_conversion(spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """Gain and shift (1, 3, 1, 1) that turn the target input's values into the output's for the
    same pixels: 1 and 0 unless the two are normalised differently (simswap)."""
    target = next(tensor for tensor in spec.inputs if tensor.name == "target")
    output = spec.outputs[0]
    assert target.pixel_scale == output.pixel_scale
    assert target.mean and target.std and output.mean and output.std
    in_mean, in_std = np.array(target.mean), np.array(target.std)
    out_mean, out_std = np.array(output.mean), np.array(output.std)
    gain = (in_std / out_std).astype(np.float32).reshape(1, 3, 1, 1)
    shift = ((in_mean - out_mean) / out_std).astype(np.float32).reshape(1, 3, 1, 1)
    return gain, shift


@pytest.fixture(scope="module")
def group_photo() -> np.ndarray:
    return cv2.imread(str(fetch_asset(T1_GROUP_PHOTO)))


@pytest.fixture(scope="module")
def group_faces(detector, group_photo: np.ndarray) -> list[Face]:
    faces = detector.detect(group_photo)
    assert len(faces) >= 3
    return faces


def source_embedding() -> np.ndarray:
    return np.random.default_rng(1).standard_normal(512).astype(np.float32)


def psnr(first: np.ndarray, second: np.ndarray) -> float:
    error = np.mean((first.astype(np.float64) - second.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else 10 * np.log10(255.0**2 / error)


def outside(frame: np.ndarray, regions: list[Region]) -> np.ndarray:
    keep = np.ones(frame.shape[:2], dtype=bool)
    for region in regions:
        keep[region.y0 : region.y1, region.x0 : region.x1] = False
    return frame[keep]


def recorded_feeds(session: ModelSession) -> list[dict[str, np.ndarray]]:
    """Make `session` remember every feed it runs."""
    feeds: list[dict[str, np.ndarray]] = []
    run = session.run

    def recording_run(inputs):
        feeds.append(dict(inputs))
        return run(inputs)

    session.run = recording_run  # type: ignore[method-assign]
    return feeds


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


@pytest.mark.parametrize("model_id", SWAPPERS)
def test_identity_swapper_gives_the_frame_back(
    model_id: str, tmp_path: Path, group_photo: np.ndarray, group_faces: list[Face]
) -> None:
    spec = get_model_spec(model_id)
    session = ModelSession(identity_swapper(spec, tmp_path / "swap.onnx"), model_id)
    swapper = NeuralSwapper(session, spec, source_embedding())
    frame = group_photo.copy()
    face = group_faces[0]
    [region] = swapper.swap_batch(frame, [face])
    assert not region.is_empty
    x0, y0, x1, y1 = (int(v) for v in face.bbox)
    assert psnr(frame[y0:y1, x0:x1], group_photo[y0:y1, x0:x1]) > 35
    assert np.array_equal(outside(frame, [region]), outside(group_photo, [region]))
    assert session.stats()[model_id]["calls"] == 1


@pytest.mark.parametrize("model_id", SWAPPERS)
def test_crop_lands_on_the_template(model_id: str, tmp_path: Path) -> None:
    spec = get_model_spec(model_id)
    assert spec.template is not None
    scale, offset = 1.7, np.array([40.0, 25.0])
    landmarks = template_points(spec.template, spec.size) * scale + offset
    face = Face(np.zeros(4, np.float32), 1.0, landmarks.astype(np.float32))
    session = ModelSession(identity_swapper(spec, tmp_path / "swap.onnx"), model_id)
    frame = np.zeros((600, 600, 3), np.uint8)
    for x, y in landmarks:
        cv2.circle(frame, (round(x), round(y)), 3, (255, 255, 255), -1)
    crop, matrix = NeuralSwapper(session, spec, source_embedding()).align(frame, face)
    expected = np.array([[1 / scale, 0, -offset[0] / scale], [0, 1 / scale, -offset[1] / scale]])
    assert np.allclose(matrix, expected, atol=1e-3)
    assert crop.shape == (*spec.size[::-1], 3)
    for x, y in template_points(spec.template, spec.size):
        assert crop[round(y), round(x)].min() > 200


def test_emap_latent_is_the_projection_over_the_norm(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    embedding = rng.standard_normal(512).astype(np.float32) * 9
    emap = rng.standard_normal((512, 512)).astype(np.float32)
    latent = inswapper_latent(embedding, emap)
    expected = np.dot(embedding.reshape(1, -1), emap) / np.linalg.norm(embedding)
    assert latent.shape == (1, 512)
    assert np.allclose(latent, expected, rtol=1e-5, atol=1e-4)
    assert abs(np.linalg.norm(latent) - 1) > 0.1  # FaceFusion does not normalise it again

    spec = get_model_spec("inswapper_128")
    path = identity_swapper(spec, tmp_path / "inswapper.onnx")
    last = numpy_helper.to_array(onnx.load(str(path)).graph.initializer[-1])
    assert np.array_equal(read_emap(path), last)
    standin = build_standin(spec, tmp_path / "standin.onnx", metadata=True)
    model = onnx.load(str(standin))
    assert model.graph.initializer[-1].name == "emap"
    assert np.array_equal(read_emap(standin), numpy_helper.to_array(model.graph.initializer[-1]))


@pytest.mark.parametrize(("batch", "calls"), [("faces", 1), (1, 3)])
def test_faces_of_a_frame_share_one_call_when_the_batch_is_dynamic(
    batch: int | str,
    calls: int,
    tmp_path: Path,
    group_photo: np.ndarray,
    group_faces: list[Face],
) -> None:
    spec = get_model_spec("inswapper_128")
    rng = np.random.default_rng(5)
    faces = [
        replace(face, embedding=rng.standard_normal(512).astype(np.float32))
        for face in group_faces[:3]
    ]
    # A weight away from 0.5 gives every face its own source row, so pairing errors show.
    options = {"emap": np.eye(512, dtype=np.float32), "weight": 0.1}
    reference_path = identity_swapper(spec, tmp_path / "single.onnx", source_gain=800.0)
    reference = NeuralSwapper(
        ModelSession(reference_path, "single"), spec, source_embedding(), **options
    )
    expected = group_photo.copy()
    for face in faces:
        reference.swap(expected, face)

    path = identity_swapper(spec, tmp_path / "swap.onnx", batch=batch, source_gain=800.0)
    session = ModelSession(path, "swap")
    swapper = NeuralSwapper(session, spec, source_embedding(), **options)
    frame = group_photo.copy()
    regions = swapper.swap_batch(frame, faces)
    assert swapper.batches_faces is (calls == 1)
    assert len(regions) == 3
    assert session.stats()["swap"]["calls"] == calls
    assert np.array_equal(frame, expected)
    assert not np.array_equal(frame, group_photo)


def test_box_mask_edges() -> None:
    hard = create_box_mask((128, 128), blur=0.0, padding=(0, 0, 0, 0))
    assert set(np.unique(hard)) == {0.0, 1.0}
    # FaceFusion always clears at least one border pixel.
    assert hard[1:-1, 1:-1].min() == 1.0
    assert hard[0].max() == hard[-1].max() == hard[:, 0].max() == hard[:, -1].max() == 0.0

    top, left = 20, 10
    padded = create_box_mask((128, 128), blur=0.0, padding=(top, 0, 0, left))
    top_rows, left_columns = int(128 * top / 100), int(128 * left / 100)
    assert padded[:top_rows].max() == 0.0 and padded[top_rows, left_columns:-1].min() == 1.0
    assert padded[:, :left_columns].max() == 0.0 and padded[top_rows:-1, left_columns].min() == 1.0
    # The unpadded sides stay as without padding.
    assert np.array_equal(padded[top_rows:, left_columns:], hard[top_rows:, left_columns:])
    assert padded.sum() < hard.sum()

    soft = create_box_mask((256, 256), blur=0.3, padding=(0, 0, 0, 0))
    assert soft.shape == (256, 256) and 0 < soft[20, 128] < 1 and soft[128, 128] > 0.99


def test_occlusion_mask_limits_the_box_mask(tmp_path: Path, group_photo: np.ndarray) -> None:
    spec = get_model_spec("xseg_1")
    session = ModelSession(build_standin(spec, tmp_path / "xseg.onnx"), "xseg_1")
    masker = OcclusionMasker(session, spec)
    crop = cv2.resize(group_photo[300:500, 700:900], (128, 128))
    occlusion = masker.mask(crop)
    assert occlusion.shape == (128, 128) and occlusion.dtype == np.float32
    assert occlusion.min() >= 0 and occlusion.max() <= 1
    box = create_box_mask((128, 128))
    combined = combine_masks(box, occlusion)
    assert np.array_equal(combined, np.minimum(box, occlusion))


def test_arcface_feeds_rgb_in_unit_range_and_returns_512(
    tmp_path: Path, group_photo: np.ndarray, group_faces: list[Face]
) -> None:
    spec = get_model_spec("arcface_w600k_r50")
    session = ModelSession(build_standin(spec, tmp_path / "arcface.onnx"), spec.model_id)
    feeds = recorded_feeds(session)
    recognizer = ArcFaceRecognizer(session)
    raw, normed = recognizer.embed(group_photo, group_faces[0].landmarks_5)
    assert raw.shape == normed.shape == (512,)
    assert np.isclose(np.linalg.norm(normed), 1.0, atol=1e-5)
    [feed] = feeds
    [blob] = feed.values()
    assert blob.shape == (1, 3, 112, 112) and blob.dtype == np.float32
    assert -1.0 <= blob.min() < -0.5 and 0.5 < blob.max() <= 1.0
    crop = recognizer.align(group_photo, group_faces[0].landmarks_5)
    assert np.allclose(blob[0, 0], crop[:, :, 2] / 127.5 - 1, atol=1e-6)  # red first


def test_fp16_swapper_matches_fp32(
    tmp_path: Path, group_photo: np.ndarray, group_faces: list[Face]
) -> None:
    spec = get_model_spec("inswapper_128")
    fp32 = identity_swapper(spec, tmp_path / "fp32.onnx", source_gain=30.0)
    fp16 = tmp_path / "fp16.onnx"
    write_prepared_variant(fp32, fp16, get_recipe("as_published", 1), get_recipe("float16", 1))
    assert np.allclose(read_emap(fp16), read_emap(fp32), atol=1e-2)
    frames = []
    for path in (fp32, fp16):
        swapper = NeuralSwapper(ModelSession(path, path.stem), spec, source_embedding())
        frame = group_photo.copy()
        swapper.swap_batch(frame, group_faces[:2])
        frames.append(frame)
    difference = np.abs(frames[0].astype(int) - frames[1].astype(int))
    assert difference.max() <= FP16_MAX_PIXEL_DIFFERENCE
    assert not np.array_equal(frames[0], group_photo)


@pytest.mark.parametrize(
    ("model_id", "with_converter"),
    [("inswapper_128", False), ("hyperswap_1a_256", False), ("simswap_256", True)],
)
def test_source_input_is_built_as_facefusion_builds_it(
    model_id: str,
    with_converter: bool,
    tmp_path: Path,
    group_photo: np.ndarray,
    group_faces: list[Face],
) -> None:
    spec = get_model_spec(model_id)
    path = identity_swapper(spec, tmp_path / "swap.onnx")
    session = ModelSession(path, model_id)
    feeds = recorded_feeds(session)
    converter = None
    embedding = source_embedding()
    if model_id == "inswapper_128":
        expected = inswapper_latent(embedding, read_emap(path))[0]
    elif with_converter:
        converter_spec = get_model_spec("crossface_simswap")
        converter_path = build_standin(converter_spec, tmp_path / "crossface.onnx")
        converter = ModelSession(converter_path, converter_spec.model_id)
        converted = converter.run({"input": embedding.reshape(1, 512)})[0].reshape(-1)
        expected = unit(converted)
    else:
        expected = unit(embedding)
    target = replace(group_faces[0], embedding=np.random.default_rng(9).standard_normal(512))
    swapper = NeuralSwapper(session, spec, embedding, embedding_converter=converter)
    swapper.swap(group_photo.copy(), target)
    mixing = NeuralSwapper(session, spec, embedding, embedding_converter=converter, weight=0.0)
    mixing.swap(group_photo.copy(), target)

    plain, mixed = (feed["source"] for feed in feeds)
    assert plain.shape == (1, 512) and plain.dtype == np.float32
    assert np.allclose(plain[0], expected, atol=1e-5)
    # Weight 0 keeps 35% of the target's own normalised identity.
    target_share = unit(target.embedding.astype(np.float32))
    assert np.allclose(mixed[0], expected * 0.65 + target_share * 0.35, atol=1e-5)
    image = feeds[0]["target"]
    assert image.shape == (1, 3, *spec.size[::-1])
    crop, _ = swapper.align(group_photo, group_faces[0])
    tensor = spec.inputs[[t.name for t in spec.inputs].index("target")]
    assert tensor.mean and tensor.std
    red = (crop[:, :, 2] / 255.0 - tensor.mean[0]) / tensor.std[0]
    assert np.allclose(image[0, 0], red, atol=1e-5)


def test_swap_with_occlusion_mask(
    tmp_path: Path, group_photo: np.ndarray, group_faces: list[Face]
) -> None:
    spec = get_model_spec("hyperswap_1a_256")
    occluder_spec = get_model_spec("xseg_1")
    occluder_session = ModelSession(build_standin(occluder_spec, tmp_path / "xseg.onnx"), "xseg")
    session = ModelSession(identity_swapper(spec, tmp_path / "swap.onnx"), spec.model_id)
    swapper = NeuralSwapper(
        session, spec, source_embedding(), occluder=OcclusionMasker(occluder_session, occluder_spec)
    )
    frame = group_photo.copy()
    regions = swapper.swap_batch(frame, group_faces[:2])
    assert occluder_session.stats()["xseg"]["calls"] == 2
    assert np.array_equal(outside(frame, regions), outside(group_photo, regions))


@pytest.mark.parametrize("model_id", SWAPPERS)
def test_a_swap_reads_and_writes_only_within_its_reach(
    model_id: str, tmp_path: Path, group_photo: np.ndarray, group_faces: list[Face]
) -> None:
    """What the planes path relies on: outside `reach` the frame may hold anything."""
    spec = get_model_spec(model_id)
    session = ModelSession(identity_swapper(spec, tmp_path / "swap.onnx"), model_id)
    swapper = NeuralSwapper(session, spec, source_embedding())
    face = group_faces[0]
    assert_stays_within_reach(swapper.reach, swapper.swap_batch, group_photo, face)
