"""Detectors are found by their manifest entry's decoder, not by their id: private weights
registered `--like scrfd_2.5g` under any name are decoded as SCRFD."""

import json
from pathlib import Path

import numpy as np
import pytest

from facefusion_ray.cli.main import main
from facefusion_ray.errors import SettingsError
from facefusion_ray.media.images import read_image, write_image_atomic
from facefusion_ray.pipeline.model_loading import DETECTOR_DECODERS, registered
from facefusion_ray.zoo.manifest import load_manifest
from facefusion_ray.zoo.model_store import STORE_ENV
from tests.test_detectors import (
    FACE_DISTANCES,
    FACE_OFFSETS,
    FACE_ROW,
    scrfd_outputs,
    write_constant_model,
)


def one_face_scrfd(path: Path) -> Path:
    """SCRFD's contract (tensor names from the manifest) answering one face for any frame: the
    face tests/test_detectors.py builds, at canvas box (360, 112, 440, 240) of 640x640."""
    spec = load_manifest().model("scrfd_2.5g")
    outputs = scrfd_outputs([(16, FACE_ROW, 0.9, FACE_DISTANCES, FACE_OFFSETS)])
    return write_constant_model(
        path,
        [1, 3, "height", "width"],
        outputs,
        input_name=spec.inputs[0].name,
        output_names=[tensor.name for tensor in spec.outputs],
    )


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
