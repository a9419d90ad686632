"""FaceFusion-compatible detectors and the 68-point landmarker, proven on hand-built ONNX models
whose outputs are constant tensors encoding faces computed by hand (no real weights exist
here), plus the manifest's stand-ins run through each class for the shape contract."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from standin_models import STANDIN_IR_VERSION, STANDIN_OPSET, build_standin

from facefusion_ray.analysis.detector_geometry import (
    anchor_centres,
    distance_to_box,
    distance_to_landmarks,
    fit_to_detector,
    nms_threshold_for_angles,
    rotation_matrix_and_size,
    transform_points,
)
from facefusion_ray.analysis.face import Face
from facefusion_ray.analysis.landmark_68 import (
    Fan68Landmarker,
    estimate_face_angle,
    landmarks_5_from_68,
)
from facefusion_ray.analysis.scrfd import ScrfdDetector
from facefusion_ray.analysis.templates import WARP_TEMPLATES
from facefusion_ray.analysis.yoloface import YoloFaceDetector
from facefusion_ray.inference.sessions import ModelSession
from facefusion_ray.zoo.manifest import load_manifest

# A 1280x720 frame shrinks to 640x360 in a 640x640 input: frame = 2 * canvas on both axes.
WIDE_FRAME = np.full((720, 1280, 3), 90, np.uint8)
SCRFD_ROWS = {8: 80 * 80 * 2, 16: 40 * 40 * 2, 32: 20 * 20 * 2}


def constant_session(
    path: Path, input_shape: Sequence[int | str], outputs: Sequence[np.ndarray]
) -> ModelSession:
    """A model returning `outputs` whatever its input: output = constant + 0 * sum(input)."""
    write_constant_model(path, input_shape, outputs)
    return ModelSession(path, path.stem)


def write_constant_model(
    path: Path,
    input_shape: Sequence[int | str],
    outputs: Sequence[np.ndarray],
    input_name: str = "input",
    output_names: Sequence[str] | None = None,
) -> Path:
    """The ONNX file behind `constant_session`, with the tensor names a contract wants."""
    names = list(output_names or [f"out_{index}" for index in range(len(outputs))])
    nodes = [
        helper.make_node("ReduceSum", [input_name], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
    ]
    initializers = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    output_infos = []
    for index, value in enumerate(outputs):
        initializers.append(numpy_helper.from_array(value.astype(np.float32), f"value_{index}"))
        nodes.append(helper.make_node("Add", [f"value_{index}", "nothing"], [names[index]]))
        output_infos.append(
            helper.make_tensor_value_info(names[index], TensorProto.FLOAT, list(value.shape))
        )
    graph = helper.make_graph(
        nodes,
        "constant_outputs",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(input_shape))],
        output_infos,
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", STANDIN_OPSET)])
    model.ir_version = STANDIN_IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def scrfd_outputs(
    candidates: Sequence[tuple[int, int, float, Sequence[float], Sequence[float]]],
) -> list[np.ndarray]:
    """Nine outputs (scores, boxes, landmarks per stride) with each candidate
    (stride, row, score, box distances in strides, landmark offsets in strides) set."""
    scores = {stride: np.zeros((rows, 1)) for stride, rows in SCRFD_ROWS.items()}
    boxes = {stride: np.ones((rows, 4)) for stride, rows in SCRFD_ROWS.items()}
    landmarks = {stride: np.zeros((rows, 10)) for stride, rows in SCRFD_ROWS.items()}
    for stride, row, score, box, points in candidates:
        scores[stride][row] = score
        boxes[stride][row] = box
        landmarks[stride][row] = points
    return [*scores.values(), *boxes.values(), *landmarks.values()]


# Stride 16, grid row 10, column 25, second anchor: row (10 * 40 + 25) * 2 + 1, centre (400, 160).
FACE_ROW = 851
FACE_DISTANCES = (2.5, 3.0, 2.5, 5.0)  # * 16 = 40, 48, 40, 80 px
FACE_OFFSETS = (-1.0, -0.5, 1.0, -0.5, 0.0, 0.5, -0.75, 2.0, 0.75, 2.0)
# Canvas box (360, 112, 440, 240) and landmarks, doubled into the 1280x720 frame.
FACE_BOX = np.array([720, 224, 880, 480], np.float32)
FACE_LANDMARKS = np.array([[768, 304], [832, 304], [800, 336], [776, 384], [824, 384]], np.float32)


@pytest.fixture(scope="module")
def scrfd_one_face(tmp_path_factory: pytest.TempPathFactory) -> ScrfdDetector:
    path = tmp_path_factory.mktemp("scrfd") / "one_face.onnx"
    outputs = scrfd_outputs([(16, FACE_ROW, 0.9, FACE_DISTANCES, FACE_OFFSETS)])
    return ScrfdDetector(constant_session(path, [1, 3, "height", "width"], outputs))


def test_anchor_grid_is_row_major_with_repeated_anchors() -> None:
    centres = anchor_centres(32, 48, 16, anchors=2)
    assert centres.shape == (2 * 3 * 2, 2)
    np.testing.assert_array_equal(centres[:4], [[0, 0], [0, 0], [16, 0], [16, 0]])
    np.testing.assert_array_equal(centres[6], [0, 16])
    np.testing.assert_array_equal(anchor_centres(640, 640, 16)[FACE_ROW], [400, 160])


def test_distances_decode_around_the_centre() -> None:
    centres = np.array([[100.0, 50.0]])
    np.testing.assert_array_equal(
        distance_to_box(centres, np.array([[10.0, 20, 30, 40]])), [[90, 30, 130, 90]]
    )
    points = distance_to_landmarks(centres, np.arange(10, dtype=np.float64)[None])
    np.testing.assert_array_equal(points[0, 4], [108, 59])


def test_fit_to_detector_shrinks_and_pads_top_left() -> None:
    frame = np.full((500, 1000, 3), 200, np.uint8)
    canvas = fit_to_detector(frame, (640, 640))
    assert canvas.pixels.shape == (640, 640, 3)
    assert canvas.pixels[319, 639, 0] == 200 and canvas.pixels[320, 0, 0] == 0
    np.testing.assert_allclose(canvas.frame_per_canvas, [1000 / 640, 500 / 320])
    small = fit_to_detector(np.ones((100, 50, 3), np.uint8), (640, 640))
    np.testing.assert_array_equal(small.frame_per_canvas, [1, 1])


def test_nms_threshold_follows_the_angle_count() -> None:
    assert [nms_threshold_for_angles(count) for count in (1, 2, 3, 4)] == [0.4, 0.3, 0.2, 0.1]


def test_scrfd_decodes_a_hand_built_face_in_frame_coordinates(
    scrfd_one_face: ScrfdDetector,
) -> None:
    faces = scrfd_one_face.detect(WIDE_FRAME)
    assert len(faces) == 1
    np.testing.assert_allclose(faces[0].bbox, FACE_BOX, atol=1e-3)
    np.testing.assert_allclose(faces[0].landmarks_5, FACE_LANDMARKS, atol=1e-3)
    assert faces[0].score == pytest.approx(0.9)


def test_scrfd_merges_overlaps_and_drops_weak_candidates(tmp_path: Path) -> None:
    outputs = scrfd_outputs(
        [
            (16, FACE_ROW, 0.9, FACE_DISTANCES, FACE_OFFSETS),
            # Same cell, first anchor, box shifted by 4 px: overlaps the face, lower score.
            (16, FACE_ROW - 1, 0.7, (2.25, 3.0, 2.75, 5.0), FACE_OFFSETS),
            # Stride 32, row 3, column 2, anchor 0: centre (64, 96); far from the face.
            (32, (3 * 20 + 2) * 2, 0.8, (1.0, 1.0, 1.0, 1.0), FACE_OFFSETS),
            (8, 5000, 0.3, (2.0, 2.0, 2.0, 2.0), FACE_OFFSETS),
        ]
    )
    detector = ScrfdDetector(constant_session(tmp_path / "m.onnx", [1, 3, 640, 640], outputs))
    faces = detector.detect(WIDE_FRAME)
    assert [face.score for face in faces] == pytest.approx([0.9, 0.8])
    np.testing.assert_allclose(faces[0].bbox, FACE_BOX, atol=1e-3)
    np.testing.assert_allclose(faces[1].bbox, [64, 128, 192, 256], atol=1e-3)


def test_scrfd_maps_a_rotated_detection_back(scrfd_one_face: ScrfdDetector) -> None:
    # A 480x640 (w x h) frame turned by 90 degrees is 640x480: it fits the input unscaled, so
    # the model's face sits at canvas box (360, 112, 440, 240). Turning by +90 maps frame
    # (x, y) to (y, 480 - x), so canvas (X, Y) comes from frame (480 - Y, X).
    tall = np.zeros((640, 480, 3), np.uint8)
    faces = scrfd_one_face.detect(tall, angles=(90,))
    assert len(faces) == 1
    np.testing.assert_allclose(faces[0].bbox, [240, 360, 368, 440], atol=1e-3)
    canvas_points = FACE_LANDMARKS / 2
    expected = np.stack([480 - canvas_points[:, 1], canvas_points[:, 0]], axis=1)
    np.testing.assert_allclose(faces[0].landmarks_5, expected, atol=1e-3)


def test_rotation_round_trip_is_exact_for_right_angles() -> None:
    for angle in (90, 180, 270):
        matrix, size = rotation_matrix_and_size(angle, (480, 640))
        assert size == ((640, 480) if angle != 180 else (480, 640))
        corners = transform_points(np.array([[0.0, 0], [480, 640]]), matrix)
        assert corners.min() == pytest.approx(0) and corners.max() == pytest.approx(640)


def yolo_output(candidates: Sequence[tuple[int, Sequence[float]]]) -> np.ndarray:
    output = np.zeros((1, 20, 8400), np.float32)
    for column, values in candidates:
        output[0, :, column] = values
    return output


YOLO_LANDMARKS = [290, 180, 0.9, 350, 180, 0.9, 320, 210, 0.9, 300, 240, 0.9, 340, 240, 0.9]


def test_yoloface_decodes_merges_and_thresholds(tmp_path: Path) -> None:
    output = yolo_output(
        [
            (5000, [320, 200, 100, 120, 0.8, *YOLO_LANDMARKS]),
            (5001, [325, 200, 100, 120, 0.6, *YOLO_LANDMARKS]),
            (7000, [100, 100, 40, 40, 0.3, *YOLO_LANDMARKS]),
            (100, [500, 500, 60, 80, 0.7, *YOLO_LANDMARKS]),
        ]
    )
    detector = YoloFaceDetector(constant_session(tmp_path / "y.onnx", [1, 3, 640, 640], [output]))
    faces = detector.detect(WIDE_FRAME)
    assert [face.score for face in faces] == pytest.approx([0.8, 0.7])
    np.testing.assert_allclose(faces[0].bbox, [540, 280, 740, 520], atol=1e-3)
    expected_points = np.array(YOLO_LANDMARKS, np.float32).reshape(5, 3)[:, :2] * 2
    np.testing.assert_allclose(faces[0].landmarks_5, expected_points, atol=1e-3)
    np.testing.assert_allclose(faces[1].bbox, [940, 920, 1060, 1080], atol=1e-3)


def test_yoloface_threshold_is_strict(tmp_path: Path) -> None:
    output = yolo_output([(5000, [320, 200, 100, 120, 0.5, *YOLO_LANDMARKS])])
    detector = YoloFaceDetector(constant_session(tmp_path / "y.onnx", [1, 3, 640, 640], [output]))
    assert len(detector.decode(output).scores) == 0


# 2DFAN4 crop of box (100, 150, 490, 345) in an 800x600 frame: longest side 390 -> 195 px, so
# scale 0.5 and translation (256 - (590, 495) * 0.5) / 2 = (-19.5, 4.25).
LANDMARK_BOX = np.array([100, 150, 490, 345], np.float32)
HEATMAP_POINTS = np.stack([10 + np.arange(68) * 0.5, 20 + np.arange(68) * 0.25], axis=1)


def fan_outputs(peak: float) -> list[np.ndarray]:
    points = np.concatenate([HEATMAP_POINTS, np.full((68, 1), 0.5)], axis=1)[None]
    heatmaps = np.zeros((1, 68, 64, 64))
    heatmaps[0, :, 7, 9] = peak
    return [points, heatmaps]


def expected_frame_points() -> np.ndarray:
    crop = HEATMAP_POINTS / 64 * 256
    return np.stack([(crop[:, 0] + 19.5) * 2, (crop[:, 1] - 4.25) * 2], axis=1)


def detector_face() -> Face:
    return Face(bbox=LANDMARK_BOX, score=0.9, landmarks_5=np.full((5, 2), 7.0, np.float32))


def test_2dfan4_points_map_to_the_frame_and_replace_the_5_points(tmp_path: Path) -> None:
    session = constant_session(tmp_path / "fan.onnx", [1, 3, 256, 256], fan_outputs(0.72))
    landmarker = Fan68Landmarker(session)
    frame = np.full((600, 800, 3), 120, np.uint8)
    result = landmarker.landmark(frame, detector_face())
    np.testing.assert_allclose(result.landmarks_68, expected_frame_points(), atol=1e-3)
    assert result.score == pytest.approx(0.72 / 0.9)
    np.testing.assert_allclose(result.landmarks_5, landmarks_5_from_68(result.landmarks_68))
    refined = landmarker.refine(frame, detector_face())
    np.testing.assert_allclose(refined.landmarks_5, result.landmarks_5)
    assert refined.score == 0.9


def test_low_landmarker_score_keeps_the_detector_points(tmp_path: Path) -> None:
    session = constant_session(tmp_path / "fan.onnx", [1, 3, 256, 256], fan_outputs(0.36))
    result = Fan68Landmarker(session).landmark(np.zeros((600, 800, 3), np.uint8), detector_face())
    assert result.score == pytest.approx(0.4)
    np.testing.assert_array_equal(result.landmarks_5, detector_face().landmarks_5)


def test_fan_68_5_works_in_the_ffhq_unit_square(tmp_path: Path) -> None:
    # Points on a horizontal jaw line give angle 0; the face's 5 points are the ffhq_512
    # template scaled by 200 and moved by (100, 50), so unit (u, v) maps to 200 (u, v) + (100, 50).
    unit_points = np.stack([np.linspace(0.1, 0.9, 68), np.full(68, 0.6)], axis=1)[None]
    fan_68_5 = constant_session(tmp_path / "f685.onnx", [1, 5, 2], [unit_points])
    fan = constant_session(tmp_path / "fan.onnx", [1, 3, 256, 256], fan_outputs(0.1))
    face = Face(
        bbox=LANDMARK_BOX,
        score=0.9,
        landmarks_5=(WARP_TEMPLATES["ffhq_512"] * 200 + [100, 50]).astype(np.float32),
    )
    result = Fan68Landmarker(fan, fan_68_5).landmark(np.zeros((600, 800, 3), np.uint8), face)
    assert result.landmarks_68_from_5 is not None
    np.testing.assert_allclose(
        result.landmarks_68_from_5, unit_points[0] * 200 + [100, 50], atol=1e-3
    )
    assert result.angle == 0
    np.testing.assert_array_equal(result.landmarks_5, face.landmarks_5)


def test_face_angle_snaps_to_right_angles() -> None:
    points = np.zeros((68, 2))
    points[16] = [0, 10]
    assert estimate_face_angle(points) == 90
    points[16] = [-10, 1]
    assert estimate_face_angle(points) == 180


def test_68_to_5_takes_eye_centres_nose_tip_and_mouth_corners() -> None:
    points = np.stack([np.arange(68), 2 * np.arange(68)], axis=1).astype(np.float64)
    np.testing.assert_allclose(
        landmarks_5_from_68(points),
        [[38.5, 77], [44.5, 89], [30, 60], [48, 96], [54, 108]],
    )


@pytest.fixture(scope="module")
def standin_sessions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModelSession]:
    folder = tmp_path_factory.mktemp("standins")
    manifest = load_manifest()
    return {
        model_id: ModelSession(
            build_standin(manifest.model(model_id), folder / f"{model_id}.onnx"), model_id
        )
        for model_id in ("scrfd_2.5g", "retinaface_10g", "yoloface_8n", "2dfan4", "fan_68_5")
    }


@pytest.mark.parametrize("model_id", ["scrfd_2.5g", "retinaface_10g"])
def test_scrfd_family_standins_run(
    model_id: str, standin_sessions: dict[str, ModelSession]
) -> None:
    frame = np.random.default_rng(1).integers(0, 255, (360, 500, 3), dtype=np.uint8)
    faces = ScrfdDetector(standin_sessions[model_id], size=(320, 320)).detect(frame)
    assert all(face.bbox.shape == (4,) and face.landmarks_5.shape == (5, 2) for face in faces)


def test_yoloface_standin_runs(standin_sessions: dict[str, ModelSession]) -> None:
    frame = np.random.default_rng(2).integers(0, 255, (360, 500, 3), dtype=np.uint8)
    faces = YoloFaceDetector(standin_sessions["yoloface_8n"]).detect(frame)
    assert all(face.landmarks_5.shape == (5, 2) for face in faces)


def test_landmarker_standins_run(standin_sessions: dict[str, ModelSession]) -> None:
    frame = np.random.default_rng(3).integers(0, 255, (360, 500, 3), dtype=np.uint8)
    landmarker = Fan68Landmarker(standin_sessions["2dfan4"], standin_sessions["fan_68_5"])
    face = Face(
        bbox=np.array([100, 80, 300, 300], np.float32),
        score=0.9,
        landmarks_5=(WARP_TEMPLATES["ffhq_512"] * 200 + [100, 80]).astype(np.float32),
    )
    result = landmarker.landmark(frame, face)
    assert result.landmarks_68.shape == (68, 2) and 0.0 <= result.score <= 1.0
    assert result.landmarks_5.shape == (5, 2)


def test_2dfan4_undoes_the_crop_rotation(tmp_path: Path) -> None:
    # Turning the 256 crop by +90 maps crop (x, y) to (y, 256 - x), so turned (U, V) is crop
    # (256 - V, U), which the box scaling then maps to the frame.
    session = constant_session(tmp_path / "fan.onnx", [1, 3, 256, 256], fan_outputs(0.72))
    frame = np.zeros((600, 800, 3), np.uint8)
    points, _ = Fan68Landmarker(session).detect_68(frame, LANDMARK_BOX, angle=90)
    turned = HEATMAP_POINTS / 64 * 256
    crop = np.stack([256 - turned[:, 1], turned[:, 0]], axis=1)
    expected = np.stack([(crop[:, 0] + 19.5) * 2, (crop[:, 1] - 4.25) * 2], axis=1)
    np.testing.assert_allclose(points, expected, atol=1e-3)


def test_a_detector_fixed_to_another_size_is_refused_by_name(tmp_path: Path) -> None:
    output = yolo_output([(5000, [320, 200, 100, 120, 0.8, *YOLO_LANDMARKS])])
    fixed_640 = constant_session(tmp_path / "y.onnx", [1, 3, 640, 640], [output])
    with pytest.raises(ValueError, match=r"takes 640x640, not \(320, 320\)"):
        YoloFaceDetector(fixed_640, size=(320, 320))
    # A model with free spatial dimensions takes whatever size it is configured for.
    free = constant_session(tmp_path / "free.onnx", [1, 3, "height", "width"], [output])
    assert YoloFaceDetector(free, size=(320, 320)).size == (320, 320)
