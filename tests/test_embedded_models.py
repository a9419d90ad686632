"""The embedded YuNet and SFace models: preparation, sessions, and agreement with OpenCV's own
implementations (FaceDetectorYN, FaceRecognizerSF) on real faces."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import pytest

from facefusion_ray.analysis import Face, SFaceRecognizer, YuNetDetector
from facefusion_ray.analysis.templates import WARP_TEMPLATES, estimate_similarity, template_points
from facefusion_ray.analysis.yunet import DEFAULT_NMS_THRESHOLD, DEFAULT_SCORE_THRESHOLD
from facefusion_ray.assets import asset_path, fetch_asset
from facefusion_ray.assets.samples import T1_GROUP_PHOTO
from facefusion_ray.errors import ModelError
from facefusion_ray.inference import ModelSession
from facefusion_ray.paths import CACHE_ENV
from facefusion_ray.zoo import (
    get_model_spec,
    load_manifest,
    prepared_model_path,
    resolve_model_path,
    resolve_source_path,
)
from facefusion_ray.zoo.graph_rewrites import dequantize
from facefusion_ray.zoo.manifest import default_manifest_path
from facefusion_ray.zoo.preparation import (
    get_recipe,
    write_prepared_model,
)
from tests.prepared_files import is_prepared_intact

T1_PEOPLE = 6


@pytest.fixture(scope="module")
def t1_frame() -> np.ndarray:
    return cv2.imread(str(fetch_asset(T1_GROUP_PHOTO)))


@pytest.fixture(scope="module")
def yunet_session() -> ModelSession:
    return ModelSession(resolve_model_path("yunet"), "yunet")


@pytest.fixture(scope="module")
def sface_session() -> ModelSession:
    return ModelSession(resolve_model_path("sface"), "sface")


@pytest.fixture(scope="module")
def detector(yunet_session: ModelSession) -> YuNetDetector:
    return YuNetDetector(yunet_session)


@pytest.fixture(scope="module")
def recognizer(sface_session: ModelSession) -> SFaceRecognizer:
    return SFaceRecognizer(sface_session)


@pytest.fixture(scope="module")
def t1_faces(detector: YuNetDetector, t1_frame: np.ndarray) -> list[Face]:
    return detector.detect(t1_frame)


def letterbox_640(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 640x640 input OpenCV gets, and the (x, y) factors from it back to the frame."""
    height, width = frame.shape[:2]
    scale = min(640 / width, 640 / height, 1.0)
    resized = cv2.resize(frame, (int(width * scale), int(height * scale)))
    padded = np.zeros((640, 640, 3), np.uint8)
    padded[: resized.shape[0], : resized.shape[1]] = resized
    factors = np.array([width / resized.shape[1], height / resized.shape[0]])
    return padded, factors


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("model_id", ["yunet", "sface"])
def test_prepared_model_is_folded_and_clean(model_id: str) -> None:
    spec = get_model_spec(model_id)
    path = resolve_model_path(model_id)
    model = onnx.load(str(path))

    assert path == prepared_model_path(spec)
    assert is_prepared_intact(path)
    assert model.ir_version <= 10
    assert not [node for node in model.graph.node if node.op_type == "DequantizeLinear"]
    assert [value.name for value in model.graph.input] == [t.name for t in spec.inputs]
    assert [value.name for value in model.graph.output] == [t.name for t in spec.outputs]


@pytest.mark.parametrize("model_id", ["yunet", "sface"])
def test_folding_keeps_the_int8_models_outputs(model_id: str, tmp_path: Path) -> None:
    # The reference keeps the published int8 weights and DequantizeLinear nodes; it only gets
    # the minimal repair onnxruntime needs to run it at all.
    reference_path = tmp_path / f"{model_id}_int8.onnx"
    write_prepared_model(
        resolve_source_path(model_id), reference_path, get_recipe("repair_quantized_graph", 1)
    )
    reference = ModelSession(reference_path, f"{model_id} int8")
    folded = ModelSession(resolve_model_path(model_id), model_id)
    shape = [int(dim) for dim in reference.input_shape()]
    pixels = np.random.default_rng(3).uniform(0, 255, shape).astype(np.float32)

    expected = reference.run({reference.input_names[0]: pixels})
    actual = folded.run({folded.input_names[0]: pixels})

    for want, got in zip(expected, actual, strict=True):
        assert np.allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("scale_shape", "axis", "block_size"),
    [((), 1, 0), ((4,), 0, 0), ((6,), 1, 0), ((4, 2), 1, 4), ((2, 6), 0, 3)],
    ids=["per-tensor", "per-axis-0", "per-axis-1", "blocked-axis-1", "blocked-axis-0"],
)
def test_dequantize_matches_onnxruntime(
    scale_shape: tuple[int, ...], axis: int, block_size: int, tmp_path: Path
) -> None:
    rng = np.random.default_rng(11)
    quantized = rng.integers(-128, 128, (4, 6), dtype=np.int8)
    scale = rng.uniform(0.001, 0.1, scale_shape).astype(np.float32)
    zero_point = rng.integers(-5, 5, scale_shape, dtype=np.int8)
    attributes = {"axis": axis, **({"block_size": block_size} if block_size else {})}
    node = onnx.helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], **attributes)
    graph = onnx.helper.make_graph(
        [node],
        "dequantize",
        [onnx.helper.make_tensor_value_info("q", onnx.TensorProto.INT8, [4, 6])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4, 6])],
        [onnx.numpy_helper.from_array(scale, "s"), onnx.numpy_helper.from_array(zero_point, "z")],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.save(model, str(tmp_path / "dequantize.onnx"))
    session = ModelSession(tmp_path / "dequantize.onnx", "dequantize")

    expected = session.run({"q": quantized})[0]

    assert np.array_equal(dequantize(quantized, scale, zero_point, axis, block_size), expected)


@pytest.mark.parametrize("model_id", ["yunet", "sface"])
def test_session_tensors_match_manifest(model_id: str) -> None:
    spec = get_model_spec(model_id)
    session = ModelSession(resolve_model_path(model_id), model_id)

    assert session.input_names == tuple(t.name for t in spec.inputs)
    assert session.output_names == tuple(t.name for t in spec.outputs)
    expected_shape = spec.inputs[0].shape
    if spec.parameters.get("symbolic_spatial"):
        # Prepared with free height and width: the published size is only the maximum.
        expected_shape = (*expected_shape[:2], "height", "width")
    assert session.input_shape() == expected_shape
    assert session.providers[0] == "CPUExecutionProvider"


def test_manifest_defaults_match_code() -> None:
    yunet = get_model_spec("yunet")
    sface = get_model_spec("sface")

    assert yunet.kind == "detector" and sface.kind == "recognizer"
    assert yunet.float_parameter("score_threshold") == DEFAULT_SCORE_THRESHOLD
    assert yunet.float_parameter("nms_threshold") == DEFAULT_NMS_THRESHOLD
    assert yunet.parameters["landmarks"] == 5
    assert sface.template in WARP_TEMPLATES
    assert sface.size == (112, 112)
    assert sface.parameters["embedding_size"] == 128


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda entry: entry.update(kind="painter"), "models.yunet.kind"),
        (lambda entry: entry["source"].update(sha256="abc"), "sha256"),
        (lambda entry: entry.pop("inputs"), "models.yunet.inputs must be a list"),
        (lambda entry: entry["source"]["locations"][0].update(type="ftp"), "'ftp'"),
    ],
    ids=["unknown-kind", "short-sha256", "no-inputs", "unknown-location"],
)
def test_invalid_manifest_is_a_model_error(
    change: Callable[[dict[str, Any]], object], complaint: str, tmp_path: Path
) -> None:
    document = json.loads(default_manifest_path().read_text())
    change(document["models"]["yunet"])
    broken = tmp_path / "manifest.json"
    broken.write_text(json.dumps(document))

    with pytest.raises(ModelError, match=re.escape(complaint)):
        load_manifest(broken)


def test_damaged_prepared_model_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = resolve_source_path("yunet")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    spec = get_model_spec("yunet")
    assert spec.source.sha256 is not None
    # Seed the private cache so nothing is downloaded.
    seeded = asset_path(spec.source.asset(spec.model_id, spec.source.sha256))
    seeded.parent.mkdir(parents=True)
    shutil.copyfile(source, seeded)
    prepared = resolve_model_path("yunet")
    pristine = prepared.read_bytes()

    prepared.write_bytes(pristine[:-10] + b"0123456789")

    assert not is_prepared_intact(prepared)
    assert resolve_model_path("yunet") == prepared
    assert prepared.read_bytes() == pristine


def test_yunet_agrees_with_opencv_face_detector(
    t1_frame: np.ndarray, t1_faces: list[Face], detector: YuNetDetector
) -> None:
    padded, factors = letterbox_640(t1_frame)
    reference = cv2.FaceDetectorYN.create(
        str(resolve_source_path("yunet")),
        "",
        (640, 640),
        # OpenCV scores sqrt(cls * obj), FaceFusion (and this detector) cls * obj.
        np.sqrt(detector.score_threshold),
        detector.nms_threshold,
        detector.top_k,
    )
    _, rows = reference.detect(padded)

    assert len(t1_faces) == len(rows) == T1_PEOPLE
    assert [face.score for face in t1_faces] == sorted((f.score for f in t1_faces), reverse=True)
    for face in t1_faces:
        boxes = np.hstack([rows[:, :2], rows[:, :2] + rows[:, 2:4]]) * np.tile(factors, 2)
        match = int(np.argmin(np.abs(boxes - face.bbox).max(axis=1)))
        landmarks = rows[match, 4:14].reshape(5, 2) * factors
        assert np.abs(boxes[match] - face.bbox).max() < 1.0
        assert np.abs(landmarks - face.landmarks_5).max() < 1.0
        assert face.score == pytest.approx(float(rows[match, 14]) ** 2, abs=2e-3)
        assert face.bbox.dtype == np.float32 and face.landmarks_5.shape == (5, 2)


def test_yunet_maps_back_to_frame_pixels(
    t1_frame: np.ndarray, t1_faces: list[Face], detector: YuNetDetector
) -> None:
    # t1 is 1280x886, the detector shrinks it to 640x443 itself; give it that size directly.
    half = cv2.resize(t1_frame, (640, 443))

    half_faces = detector.detect(half)

    assert len(half_faces) == len(t1_faces)
    for full, small in zip(t1_faces, half_faces, strict=True):
        factors = np.array([1280 / 640, 886 / 443], dtype=np.float32)
        assert np.allclose(small.landmarks_5 * factors, full.landmarks_5, atol=1e-3)


def test_sface_agrees_with_opencv_face_recognizer(
    tmp_path: Path, t1_frame: np.ndarray, t1_faces: list[Face], recognizer: SFaceRecognizer
) -> None:
    # OpenCV cannot open the published file (175 graph inputs); the repair recipe only drops the
    # stale inputs, the int8 weights and DequantizeLinear nodes stay as published.
    repaired = tmp_path / "sface_int8_repaired.onnx"
    write_prepared_model(
        resolve_source_path("sface"), repaired, get_recipe("repair_quantized_graph", 1)
    )
    reference = cv2.FaceRecognizerSF.create(str(repaired), "")

    for face in t1_faces:
        row = np.concatenate(
            [
                face.bbox[:2],
                face.bbox[2:] - face.bbox[:2],
                face.landmarks_5.reshape(-1),
                [face.score],
            ]
        ).astype(np.float32)[None]
        expected = reference.feature(reference.alignCrop(t1_frame, row)).reshape(-1)
        raw, normed = recognizer.embed(t1_frame, face.landmarks_5)

        assert raw.shape == normed.shape == (128,)
        assert np.linalg.norm(normed) == pytest.approx(1.0, abs=1e-5)
        assert cosine(raw, expected) > 0.99


def moved_photo(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The photo zoomed by 10 %, turned by 3 degrees and shifted, on a canvas large enough that
    no face leaves the picture; returns it with the 2x3 matrix that made it."""
    height, width = frame.shape[:2]
    canvas = (int(width * 1.15), int(height * 1.15))
    warp = cv2.getRotationMatrix2D((width / 2, height / 2), 3.0, 1.1)
    warp[:, 2] += ((canvas[0] - width) / 2 + 10.0, (canvas[1] - height) / 2 - 7.0)
    return cv2.warpAffine(frame, warp, canvas), warp


def test_sface_same_face_moved_stays_similar(
    t1_frame: np.ndarray, t1_faces: list[Face], recognizer: SFaceRecognizer
) -> None:
    moved_frame, warp = moved_photo(t1_frame)
    originals = np.stack([recognizer.embed(t1_frame, f.landmarks_5)[1] for f in t1_faces])

    same_person, other_people = [], []
    for index, face in enumerate(t1_faces):
        landmarks = cv2.transform(face.landmarks_5[None], warp)[0]
        similarities = originals @ recognizer.embed(moved_frame, landmarks)[1]
        same_person.append(similarities[index])
        other_people.extend(np.delete(similarities, index))

    assert min(same_person) > 0.9
    assert max(other_people) < min(same_person)


def test_faces_redetected_in_moved_photo_are_recognised(
    t1_frame: np.ndarray,
    t1_faces: list[Face],
    detector: YuNetDetector,
    recognizer: SFaceRecognizer,
) -> None:
    # End to end: fresh landmarks from YuNet. They wobble by a few pixels on these small faces,
    # which costs similarity (0.75-0.98 measured) but never the identity.
    moved_frame, warp = moved_photo(t1_frame)
    moved_faces = detector.detect(moved_frame)
    originals = np.stack([recognizer.embed(t1_frame, f.landmarks_5)[1] for f in t1_faces])

    assert len(moved_faces) == T1_PEOPLE
    same_person, other_people = [], []
    for face in moved_faces:
        similarities = originals @ recognizer.embed(moved_frame, face.landmarks_5)[1]
        expected = cv2.transform(np.stack([f.landmarks_5 for f in t1_faces]), warp)
        person = int(np.argmin(np.linalg.norm(expected - face.landmarks_5, axis=2).mean(axis=1)))
        assert int(np.argmax(similarities)) == person
        same_person.append(similarities[person])
        other_people.extend(np.delete(similarities, person))

    assert max(other_people) < min(same_person)


def test_session_counts_calls(t1_frame: np.ndarray) -> None:
    session = ModelSession(resolve_model_path("yunet"), "yunet")
    detector = YuNetDetector(session)

    detector.detect(t1_frame)
    detector.detect(t1_frame)

    stats = session.stats()
    assert stats["yunet"]["calls"] == 2
    assert stats["yunet"]["seconds"] > 0


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_unavailable_gpu_provider_is_an_error() -> None:
    with pytest.raises(ModelError, match="CUDAExecutionProvider"):
        ModelSession(
            resolve_model_path("yunet"),
            "yunet",
            providers=["CUDAExecutionProvider", "CPUExecutionProvider"],
        )


def test_similarity_fit_recovers_a_known_transform() -> None:
    template = template_points("arcface_112_v2", 112)
    angle = np.deg2rad(12.0)
    rotation = 2.5 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = template @ rotation.T + (300.0, 120.0)  # the face as it appears in a frame

    matrix = estimate_similarity(landmarks, "arcface_112_v2", (112, 112))

    assert np.allclose(cv2.transform(landmarks[None], matrix)[0], template, atol=1e-9)
    # With noise, FaceFusion's call (RANSAC with a 100 px threshold keeps every point, then
    # refines) lands on the same least-squares fit.
    noisy = landmarks + np.random.default_rng(7).normal(0.0, 2.0, landmarks.shape)
    opencv, _ = cv2.estimateAffinePartial2D(
        noisy, template, method=cv2.RANSAC, ransacReprojThreshold=100
    )
    ours = estimate_similarity(noisy, "arcface_112_v2", 112)
    assert np.allclose(
        cv2.transform(noisy[None], ours), cv2.transform(noisy[None], opencv), atol=0.01
    )


def test_yunet_with_free_input_size_matches_opencv_at_that_size(t1_frame: np.ndarray) -> None:
    """The opt-in frame-aspect path: a 16:9 frame runs at 640x384 and agrees with OpenCV."""
    detector = YuNetDetector(ModelSession(resolve_model_path("yunet"), "yunet"), frame_aspect=True)
    assert detector.accepts_any_size and detector.frame_aspect
    frame = cv2.resize(t1_frame, (640, 360))
    reference = cv2.FaceDetectorYN.create(
        str(resolve_source_path("yunet")),
        "",
        (640, 360),
        np.sqrt(detector.score_threshold),
        detector.nms_threshold,
        detector.top_k,
    )
    _, rows = reference.detect(frame)
    faces = detector.detect(frame)
    assert len(faces) == len(rows) >= 5
    for face in faces:
        boxes = np.hstack([rows[:, :2], rows[:, :2] + rows[:, 2:4]])
        assert np.abs(boxes - face.bbox).max(axis=1).min() < 1.0
