"""FaceFusion installed with the parity stand-ins, and this project's store of the same files.

Shared by the still and the video parity tests: every file FaceFusion's pre_check demands,
built from tests/parity_standins.py and tests/parity_detectors.py (YuNet is the embedded
model itself), written into one oracle installation and imported here with
`models import --from-facefusion`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facefusion_ray.analysis.detector_geometry import fit_to_detector
from facefusion_ray.analysis.yunet import YuNetDetector
from facefusion_ray.inference.sessions import ModelSession
from facefusion_ray.media import read_image
from facefusion_ray.zoo.facefusion_import import import_facefusion_folder
from facefusion_ray.zoo.manifest import load_manifest
from facefusion_ray.zoo.model_store import ModelStore, resolve_model_path
from tests import parity_standins as standins
from tests.facefusion_oracle import FaceFusionOracle, ModelBuilder, reference_tarball
from tests.parity_detectors import KnownFace, build_scrfd, build_yoloface
from tests.standin_models import build_standin

RETINAFACE_SIZE = 320


def copy_of(source: Path) -> ModelBuilder:
    return lambda path: Path(shutil.copyfile(source, path))


def from_manifest(model_id: str) -> ModelBuilder:
    return lambda path: build_standin(load_manifest().model(model_id), path)


def model_files(
    landmarker_heat: float, known_faces: Callable[[int], list[KnownFace]]
) -> dict[str, ModelBuilder]:
    """Every file FaceFusion's pre_check demands for the configurations below; the stand-in
    detectors find `known_faces(size)` at their size (640, retinaface at 320)."""
    return {
        "yunet_2023_mar": copy_of(resolve_model_path("yunet")),
        "scrfd_2.5g": lambda path: build_scrfd(path, "scrfd_2.5g", 640, known_faces(640)),
        "retinaface_10g": lambda path: build_scrfd(
            path, "retinaface_10g", RETINAFACE_SIZE, known_faces(RETINAFACE_SIZE)
        ),
        "yoloface_8n": lambda path: build_yoloface(path, 640, known_faces(640)),
        "inswapper_128": lambda path: standins.build_swapper(path, "inswapper_128", 128, emap=True),
        "inswapper_128_fp16": standins.build_fp16_swapper,
        "arcface_w600k_r50": standins.build_arcface,
        "2dfan4": lambda path: standins.build_2dfan4(path, landmarker_heat),
        "fan_68_5": standins.build_fan_68_5,
        "bisenet_resnet_34": standins.build_face_parser,
        "xseg_1": standins.build_occluder,
        "hyperswap_1a_256": lambda path: standins.build_swapper(
            path, "hyperswap_1a_256", 256, mask_output=True
        ),
        "simswap_256": lambda path: standins.build_swapper(path, "simswap_256", 256),
        "crossface_simswap": from_manifest("crossface_simswap"),
        "gfpgan_1.4": standins.build_enhancer,
        **standins.content_analyser_standins(),
    }


@dataclass(frozen=True)
class Installation:
    oracle: FaceFusionOracle
    store: str


def install(name: str, models: dict[str, ModelBuilder], folder: Path) -> Installation:
    """FaceFusion with `models`, and a model store here that imported the same folder."""
    tarball = reference_tarball()
    assert tarball is not None
    oracle = FaceFusionOracle.install(tarball, name, models)
    store = str(folder / f"store-{name}")
    imported = import_facefusion_folder(ModelStore(store), oracle.models_folder)
    assert not imported.refused, imported.refused
    return Installation(oracle, store)


def group_known_faces(group_photo: Path) -> Callable[[int], list[KnownFace]]:
    """The group's faces as YuNet finds them, in a size x size detector canvas: what the
    stand-in detectors decode to."""
    group = read_image(group_photo)

    def known_faces(size: int) -> list[KnownFace]:
        frame_per_canvas = fit_to_detector(group, (size, size)).frame_per_canvas
        detector = YuNetDetector(ModelSession(resolve_model_path("yunet"), "yunet"))
        return [
            KnownFace(face.bbox / np.tile(frame_per_canvas, 2), face.landmarks_5 / frame_per_canvas)
            for face in detector.detect(group)
        ]

    return known_faces
