"""Pixel parity with FaceFusion 3.8.1 itself: both programs, the same model files and flags.

FaceFusion runs offline from its source tarball (tests/facefusion_oracle.py) on FaceFusion-layout
model files: the real YuNet weights (the embedded ones, as yunet_2023_mar.onnx) and stand-ins
whose outputs depend on positions and values (tests/parity_standins.py). This project imports
the same folder with `models import --from-facefusion` and renders the same PNG stills (no
codec involved). One FaceFusion batch run covers every target of a configuration, because its
start-up is the cost. Criterion (tests/parity_checks.py): at least 99.9% of the pixels either
program changed agree within 2 levels, and the same faces change.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from facefusion_ray.analysis.select import FaceSelection
from facefusion_ray.engine.driver import run_swap
from facefusion_ray.media import read_image
from facefusion_ray.media.images import write_image_atomic
from facefusion_ray.settings import SwapSettings
from tests.facefusion_oracle import FaceFusionOracle, reference_tarball
from tests.parity_checks import compare
from tests.parity_installation import Installation, group_known_faces, install, model_files

pytestmark = pytest.mark.skipif(
    reference_tarball() is None, reason="FaceFusion 3.8.1 source tarball not on this machine"
)


@dataclass(frozen=True)
class Configuration:
    """One FaceFusion batch run over `faces` (target name: faces that must change) and the
    same render here: `flags` are FaceFusion's, `settings` this project's equivalents."""

    name: str
    flags: tuple[str, ...]
    settings: Mapping[str, object]
    faces: Mapping[str, int]
    swapper: str = "inswapper_128"
    landmarker_heat: float = 0.2  # 2dfan4's score below FaceFusion's 0.5: the 5 points rule
    detector: str = "yunet"  # FaceFusion's name (this project's: DETECTOR_IDS)


# FaceFusion's --face-detector-model values and the manifest ids of the same files here.
DETECTOR_IDS = {
    "yunet": "yunet_2023_mar",
    "scrfd": "scrfd_2.5g",
    "retinaface": "retinaface_10g",
    "yolo_face": "yoloface_8n",
}


SWAP_MANY = Configuration(
    "yunet_inswapper_many",
    ("--face-selector-mode", "many"),
    {},
    {"group": 6, "edges": 4, "small": 6},
)
CONFIGURATIONS = (
    SWAP_MANY,
    Configuration(
        "box_mask_blur_padding_one",
        (
            *("--face-selector-mode", "one", "--face-selector-order", "left-right"),
            *("--face-mask-blur", "0.7", "--face-mask-padding", "10", "20", "0", "5"),
        ),
        {
            "face_selector": FaceSelection(mode="one", order="left-right"),
            "face_mask_blur": 0.7,
            "face_mask_padding": (10, 20, 0, 5),
        },
        {"group": 1},
    ),
    Configuration("inswapper_128_fp16", (), {}, {"small": 6}, "inswapper_128_fp16"),
    Configuration(
        "hyperswap_1a_256", ("--face-selector-mode", "many"), {}, {"small": 6}, "hyperswap_1a_256"
    ),
    Configuration(
        "simswap_256_crossface", ("--face-selector-mode", "many"), {}, {"small": 6}, "simswap_256"
    ),
    Configuration(
        "xseg_1_occlusion",
        (
            *("--face-selector-mode", "many", "--face-mask-types", "box", "occlusion"),
            *("--face-occluder-model", "xseg_1"),
        ),
        {"face_occluder_model": "xseg_1"},
        {"small": 6},
    ),
    Configuration(
        "gfpgan_1.4_blend_60",
        (
            *("--face-selector-mode", "many", "--processors", "face_swapper", "face_enhancer"),
            *("--face-enhancer-model", "gfpgan_1.4", "--face-enhancer-blend", "60"),
        ),
        {"face_enhancer_model": "gfpgan_1.4", "face_enhancer_blend": 60},
        {"small": 5},  # two neighbours' enhanced crops touch
    ),
    Configuration(
        "reference_position_1",
        (
            *("--face-selector-mode", "reference", "--reference-face-position", "1"),
            *("--reference-face-distance", "0.15"),
        ),
        {
            "face_selector": FaceSelection(
                mode="reference", reference_face_position=1, reference_face_distance=0.15
            )
        },
        {"small": 3},
    ),
    Configuration(
        "2dfan4_landmarks",
        ("--face-selector-mode", "many", "--face-landmarker-model", "2dfan4"),
        {"face_landmarker_model": "2dfan4"},
        {"small": 5},  # the stand-in's larger alignments make two neighbours' crops touch
        landmarker_heat=0.8,
    ),
    # YuNet scores the small group's faces 0.78 to 0.86 as cls * obj (0.88 to 0.93 as OpenCV's
    # sqrt): at 0.8 FaceFusion keeps four of six.
    Configuration(
        "detector_score_0.8",
        ("--face-detector-score", "0.8"),
        {"face_detector_score": 0.8},
        {"small": 4},
    ),
    Configuration(
        "yunet_angles_0_90_180",
        ("--face-detector-angles", "0", "90", "180"),
        {"face_detector_angles": (0, 90, 180)},
        {"small": 6},
    ),
    Configuration("scrfd_2.5g", (), {}, {"group": 6}, detector="scrfd"),
    Configuration(
        "retinaface_10g_320",
        ("--face-detector-size", "320x320"),
        {"face_detector_size": "320x320"},
        {"group": 6},
        detector="retinaface",
    ),
    Configuration("yoloface_8n", (), {}, {"group": 6}, detector="yolo_face"),
)


def build_targets(group_photo: Path, folder: Path) -> dict[str, Path]:
    """PNG stills: the group of six; a 1280x720 frame whose faces are cut by its left and bottom
    edges (where YuNet's canvas decides: at the frame's aspect a fifth face is missed); the
    group at half size (never shrunk; even sides, as FaceFusion rounds odd ones up)."""
    group = read_image(group_photo)
    edges = np.zeros((720, 1280, 3), np.uint8)
    edges[350:, :1155] = group[:370, 125:]
    small = cv2.resize(group, (640, 442), interpolation=cv2.INTER_AREA)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, image in {"group": group, "edges": edges, "small": small}.items():
        paths[name] = folder / f"{name}.png"
        write_image_atomic(paths[name], image)
    return paths


@pytest.fixture(scope="module")
def parity_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("facefusion-parity")


@pytest.fixture(scope="module")
def targets(sample_media, parity_folder: Path) -> dict[str, Path]:
    return build_targets(sample_media.group_photo, parity_folder / "targets")


@pytest.fixture(scope="module")
def installations(parity_folder: Path, targets: dict[str, Path]) -> Callable[[float], Installation]:
    """One installation per 2dfan4 heat, made on first use."""
    made: dict[float, Installation] = {}
    known_faces = group_known_faces(targets["group"])

    def installation(heat: float) -> Installation:
        if heat not in made:
            models = model_files(heat, known_faces)
            made[heat] = install(f"parity-heat-{heat}", models, parity_folder)
        return made[heat]

    return installation


@dataclass(frozen=True)
class Rendered:
    """Where both programs' outputs of one configuration lie."""

    inputs: Path
    ours: Path
    theirs: Path

    def images(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            read_image(self.inputs / f"{name}.png"),
            read_image(self.ours / f"{name}.png"),
            read_image(self.theirs / f"{name}.png"),
        )


def render_both(
    installation: Installation,
    configuration: Configuration,
    targets: dict[str, Path],
    source: Path,
    work: Path,
) -> Rendered:
    rendered = Rendered(work / "in", work / "ours", work / "facefusion")
    rendered.inputs.mkdir(parents=True)
    for name in configuration.faces:
        shutil.copyfile(targets[name], rendered.inputs / f"{name}.png")
    run_facefusion(installation.oracle, configuration, source, rendered, work / "facefusion-work")
    settings = replace(our_settings(installation, configuration), **configuration.settings)
    for name in configuration.faces:
        target = rendered.inputs / f"{name}.png"
        run_swap([source], target, rendered.ours / f"{name}.png", settings, sequential=True)
    return rendered


def run_facefusion(
    oracle: FaceFusionOracle,
    configuration: Configuration,
    source: Path,
    rendered: Rendered,
    work: Path,
) -> None:
    rendered.theirs.mkdir()
    arguments = [
        *("--source-pattern", str(source), "--target-pattern", str(rendered.inputs / "*.png")),
        *("--output-pattern", str(rendered.theirs / "{target_name}{target_extension}")),
        *("--processors", "face_swapper", "--face-swapper-model", configuration.swapper),
        *("--face-detector-model", configuration.detector, "--face-selector-mode", "many"),
        *configuration.flags,
    ]
    run = oracle.run("batch-run", arguments, work)
    assert run.returncode == 0, run.log[-3000:]


def our_settings(installation: Installation, configuration: Configuration) -> SwapSettings:
    return SwapSettings(
        face_detector_model=DETECTOR_IDS[configuration.detector],
        face_swapper_model=configuration.swapper,
        model_store=installation.store,
        use_analysis_cache=False,
        face_selector=FaceSelection(mode="many"),
    )


def assert_parity(rendered: Rendered, faces: Mapping[str, int]) -> None:
    verdicts = {name: compare(*rendered.images(name)) for name in faces}
    report = "\n".join(f"{name}: {verdict}" for name, verdict in verdicts.items())
    print(report)
    for name, verdict in verdicts.items():
        assert verdict.holds, report
        assert verdict.regions_ours == faces[name], report


@pytest.fixture(scope="module")
def render(
    installations, targets: dict[str, Path], sample_media, parity_folder: Path
) -> Callable[[Configuration], Rendered]:
    """Each configuration rendered once by both programs, for every test that reads it."""
    made: dict[str, Rendered] = {}

    def rendered(configuration: Configuration) -> Rendered:
        if configuration.name not in made:
            made[configuration.name] = render_both(
                installations(configuration.landmarker_heat),
                configuration,
                targets,
                sample_media.source_tom_hanks,
                parity_folder / configuration.name,
            )
        return made[configuration.name]

    return rendered


@pytest.mark.parametrize("configuration", CONFIGURATIONS, ids=lambda value: value.name)
def test_same_pixels_as_facefusion(render, configuration: Configuration) -> None:
    assert_parity(render(configuration), configuration.faces)


def test_frame_aspect_fast_path_misses_a_face_facefusion_swaps(
    render, installations, sample_media, tmp_path: Path
) -> None:
    """Why YuNet at the frame's aspect is opt-in: at the edges it sees other faces."""
    rendered = render(SWAP_MANY)
    settings = replace(
        our_settings(installations(SWAP_MANY.landmarker_heat), SWAP_MANY),
        face_detector_frame_aspect=True,
    )
    fast = tmp_path / "edges.png"
    run_swap(
        [sample_media.source_tom_hanks],
        rendered.inputs / "edges.png",
        fast,
        settings,
        sequential=True,
    )
    target, _, theirs = rendered.images("edges")
    verdict = compare(target, read_image(fast), theirs)
    assert verdict.regions_theirs == SWAP_MANY.faces["edges"]
    assert verdict.regions_ours == SWAP_MANY.faces["edges"] - 1, str(verdict)
    assert not verdict.holds
