"""Detectors are found by their manifest entry's decoder, not by their id: private weights
registered `--like scrfd_2.5g` under any name are decoded as SCRFD."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from facefusion_ray.cli.main import main
from facefusion_ray.errors import SettingsError
from facefusion_ray.media.images import read_image, write_image_atomic
from facefusion_ray.pipeline.model_loading import DETECTOR_DECODERS, registered
from facefusion_ray.zoo.manifest import load_manifest
from facefusion_ray.zoo.model_store import STORE_ENV
from tests.standin_models import STANDIN_IR_VERSION, STANDIN_OPSET

# One face, on stride 16 at grid row 10, column 25 (second anchor): canvas box (360, 112, 440,
# 240) of the 640x640 input, as tests/test_detectors.py builds it.
STRIDE_ROWS = {8: 80 * 80 * 2, 16: 40 * 40 * 2, 32: 20 * 20 * 2}
FACE_ROW = 851
FACE_DISTANCES = (2.5, 3.0, 2.5, 5.0)
FACE_OFFSETS = (-1.0, -0.5, 1.0, -0.5, 0.0, 0.5, -0.75, 2.0, 0.75, 2.0)


def one_face_scrfd(path: Path) -> Path:
    """SCRFD's contract (tensor names from the manifest) answering one face for any frame."""
    spec = load_manifest().model("scrfd_2.5g")
    values = {
        "score": {stride: np.zeros((rows, 1)) for stride, rows in STRIDE_ROWS.items()},
        "bbox": {stride: np.ones((rows, 4)) for stride, rows in STRIDE_ROWS.items()},
        "kps": {stride: np.zeros((rows, 10)) for stride, rows in STRIDE_ROWS.items()},
    }
    values["score"][16][FACE_ROW] = 0.9
    values["bbox"][16][FACE_ROW] = FACE_DISTANCES
    values["kps"][16][FACE_ROW] = FACE_OFFSETS
    input_name = spec.inputs[0].name
    nodes = [
        helper.make_node("ReduceSum", [input_name], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
    ]
    initializers = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    outputs = []
    for tensor in spec.outputs:
        kind, stride = tensor.name.split("_")
        value = values[kind][int(stride)].astype(np.float32)
        initializers.append(numpy_helper.from_array(value, f"{tensor.name}_value"))
        nodes.append(helper.make_node("Add", [f"{tensor.name}_value", "nothing"], [tensor.name]))
        outputs.append(helper.make_tensor_value_info(tensor.name, TensorProto.FLOAT, value.shape))
    graph = helper.make_graph(
        nodes,
        "one_face_scrfd",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, 3, "height", "width"])],
        outputs,
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", STANDIN_OPSET)])
    model.ir_version = STANDIN_IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_detector_decoders_come_from_the_manifest() -> None:
    manifest = load_manifest()
    decoders = {
        model_id: registered(DETECTOR_DECODERS, manifest.model(model_id), "decoder")
        for model_id in ("yunet", "scrfd_2.5g", "retinaface_10g", "yoloface_8n")
    }
    assert decoders["scrfd_2.5g"] is decoders["retinaface_10g"]
    assert len(set(decoders.values())) == 3
    with pytest.raises(SettingsError, match="its manifest entry's decoder is None"):
        registered(DETECTOR_DECODERS, manifest.model("sface"), "decoder")


def test_a_detector_added_like_scrfd_swaps_with_the_scrfd_decoder(
    sample_media, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "store"))
    weights = one_face_scrfd(tmp_path / "weights.onnx")
    assert main(["models", "add", "my_det", str(weights), "--like", "scrfd_2.5g"]) == 0

    # The stand-in finds its face at the same place in any image: the source is the group photo
    # mirrored, so another face sits there, inside the image.
    group = read_image(sample_media.group_photo)
    source = tmp_path / "mirrored.png"
    write_image_atomic(source, group[:, ::-1])
    output, report_path = tmp_path / "swapped.png", tmp_path / "report.json"
    arguments = ["--source", str(source), "--output", str(output)]
    arguments += ["--target", str(sample_media.group_photo), "--report", str(report_path)]
    assert main(["swap", *arguments, "--face-detector-model", "my_det", "--sequential"]) == 0

    report = json.loads(report_path.read_text())
    assert report["faces_swapped"] == 1
    assert report["model_calls"]["my_det"] >= 1
    # The stand-in's one face sits at canvas box (360, 112, 440, 240) of the letterboxed frame:
    # the swap changes pixels there and nowhere far from it.
    before, after = group, read_image(output)
    scale = max(before.shape[:2]) / 640
    changed = np.argwhere(np.any(before != after, axis=2))
    top, left = changed.min(axis=0) / scale
    bottom, right = changed.max(axis=0) / scale
    assert left >= 300 and right <= 500 and top >= 60 and bottom <= 290
