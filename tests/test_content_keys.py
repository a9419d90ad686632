"""Keys are derived from each settings field's declared scope and from the model plan.

The walk below visits every field of SwapSettings (nested ones too): a field without a declared
scope fails it, and so does a field nobody gave an alternative value, so a field added later is
keyed by what it declares or this test says what is missing.
"""

import dataclasses
from typing import Any

import pytest

from facefusion_ray.analysis.select import FaceSelection
from facefusion_ray.errors import ModelError, SettingsError
from facefusion_ray.option_scopes import Scope, values_in_scope
from facefusion_ray.pipeline.content_keys import analysis_key, render_key
from facefusion_ray.pipeline.model_plan import ModelPlan, Role, build_model_plan, model_choices
from facefusion_ray.settings import SwapSettings
from facefusion_ray.zoo.manifest import Manifest, load_manifest

# A neural base, so that every option has a model to act on.
BASE = SwapSettings(face_swapper_model="inswapper_128")
# A value each field can take instead of BASE's, valid on its own.
ALTERNATIVES: dict[str, object] = {
    "face_detector_model": "scrfd_2.5g",
    "face_detector_score": 0.6,
    "face_detector_angles": (0, 90),
    "face_landmarker_model": "2dfan4",
    "face_landmarker_score": 0.9,
    "face_recognizer_model": "arcface_w600k_r50",
    "face_occluder_model": "xseg_1",
    "face_swapper_model": "hyperswap_1a_256",
    "face_mask_feather": 0.2,
    "face_enhancer_model": "gfpgan_1.4",
    "face_enhancer_blend": 50,
    "face_mask_blur": 0.5,
    "face_mask_padding": (10, 0, 0, 0),
    "output_video_quality": 90,
    "output_video_preset": "medium",
    "output_video_encoder": "libx265",
    "decode_hwaccel": "cuda",
    "chunk_frames": 32,
    "workers": 4,
    "execution.device": "cuda",
    "execution.allow_cpu_fallback": True,
    "execution.intra_op_threads": 2,
    "execution.gpu_memory_limit_bytes": 1 << 30,
    "execution.gpu_fraction": 0.5,
    "execution.memory_bytes": 1 << 30,
    "execution.cpu_arena": False,
    "execution.tensorrt_cache_dir": "/tmp/trt",
    "execution.precision": "fp32",
    "target_reads.identity": "content",
    "target_reads.stage_below_bytes": 0,
    "target_reads.signed_url_seconds": 600,
    "face_selector.mode": "one",
    "face_selector.order": "left-right",
    "face_selector.reference_face_position": 1,
    "face_selector.reference_face_distance": 0.5,
    "reference_frame_number": 3,
    "debug_overlay": True,
    "model_store": "/elsewhere/models",
    "manifest_path": "/elsewhere/manifest.json",
    "analysis_cache": "/elsewhere/analysis",
    "use_analysis_cache": False,
    "max_pixels": 100_000_000,
    "face_detector_size": "320x320",
    "face_detector_frame_aspect": True,
}
# Settings some alternatives need besides their own value.
COMPANIONS: dict[str, dict[str, object]] = {
    "execution.gpu_memory_limit_bytes": {"execution.device": "cuda"},
    "execution.gpu_fraction": {"execution.device": "cuda"},
}


def fake_pins(model_ids: Any) -> dict[str, str]:
    return {model_id: f"sha256-of-{model_id}" for model_id in model_ids}


def plan_of(settings: SwapSettings, manifest: Manifest) -> ModelPlan:
    return build_model_plan(settings, manifest, fake_pins)


def with_values(settings: SwapSettings, values: dict[str, object]) -> SwapSettings:
    top: dict[str, object] = {}
    nested: dict[str, dict[str, object]] = {}
    for path, value in values.items():
        parent, _, name = path.rpartition(".")
        if parent:
            nested.setdefault(parent, {})[name] = value
        else:
            top[path] = value
    for parent, changes in nested.items():
        top[parent] = dataclasses.replace(getattr(settings, parent), **changes)
    return dataclasses.replace(settings, **top)


def keys(settings: SwapSettings, manifest: Manifest) -> tuple[str, str]:
    plan = plan_of(settings, manifest)
    return analysis_key(settings, plan), render_key("out.mp4", "video", ["source"], settings, plan)


def every_field() -> dict[str, Scope]:
    scopes: dict[str, Scope] = {}
    for scope in Scope:
        scopes.update(dict.fromkeys(values_in_scope(BASE, scope), scope))
    return scopes


def test_every_field_declares_a_scope_and_has_an_alternative() -> None:
    fields = every_field()
    assert sorted(fields) == sorted(ALTERNATIVES), "give each new field an alternative here"


@pytest.mark.parametrize("path", sorted(ALTERNATIVES))
def test_each_field_moves_exactly_the_keys_its_scope_says(path: str) -> None:
    manifest = load_manifest()
    scope = every_field()[path]
    changed = with_values(BASE, {**COMPANIONS.get(path, {}), path: ALTERNATIVES[path]})
    base = with_values(BASE, COMPANIONS.get(path, {}))
    (analysis_before, render_before), (analysis_after, render_after) = (
        keys(base, manifest),
        keys(changed, manifest),
    )
    if scope is Scope.ANALYSIS:
        assert analysis_after != analysis_before and render_after != render_before
    elif scope is Scope.PIXELS:
        assert analysis_after == analysis_before and render_after != render_before
    else:
        assert (analysis_after, render_after) == (analysis_before, render_before)


def test_a_field_without_a_scope_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class Undeclared:
        threshold: float = 0.5

    with pytest.raises(TypeError, match=r"Undeclared\.threshold declares no scope"):
        values_in_scope(Undeclared(), Scope.ANALYSIS)


def test_the_landmarker_score_is_in_the_analysis_key() -> None:
    """Cached faces are stored after the landmarker replaced (or kept) the 5 points, so two
    scores must not share cached analysis (key version 1 forgot this)."""
    manifest = load_manifest()
    at_half = SwapSettings(face_landmarker_model="2dfan4", face_landmarker_score=0.5)
    at_most = dataclasses.replace(at_half, face_landmarker_score=0.9)
    assert keys(at_half, manifest)[0] != keys(at_most, manifest)[0]


def test_model_files_and_their_reading_are_in_the_keys() -> None:
    manifest = load_manifest()
    plan = plan_of(BASE, manifest)
    swapped_hash = ModelPlan(
        tuple(
            dataclasses.replace(model, sha256="other") if model.role is Role.SWAPPER else model
            for model in plan.models
        )
    )
    resized = ModelPlan(
        tuple(
            dataclasses.replace(model, spec=dataclasses.replace(model.spec, size=(320, 320)))
            if model.role is Role.DETECTOR
            else model
            for model in plan.models
        )
    )
    render = render_key("out.mp4", "video", ["source"], BASE, plan)
    assert render_key("out.mp4", "video", ["source"], BASE, swapped_hash) != render
    assert analysis_key(BASE, swapped_hash) == analysis_key(BASE, plan)
    assert analysis_key(BASE, resized) != analysis_key(BASE, plan)


def test_roles_come_from_the_settings_and_the_manifest() -> None:
    manifest = load_manifest()
    reference = SwapSettings(
        face_swapper_model="simswap_256",
        face_landmarker_model="2dfan4",
        face_selector=FaceSelection(mode="reference"),
    )
    assert model_choices(reference, manifest) == {
        Role.DETECTOR: "yunet",
        Role.LANDMARKER: "2dfan4",
        Role.LANDMARK_ESTIMATOR: "fan_68_5",
        # "auto": a neural swapper's own recognizer, as FaceFusion compares faces.
        Role.TARGET_RECOGNIZER: "arcface_w600k_r50",
        Role.SWAPPER: "simswap_256",
        Role.SOURCE_RECOGNIZER: "arcface_w600k_r50",
        Role.EMBEDDING_CONVERTER: "crossface_simswap",
    }
    assert model_choices(SwapSettings(), manifest) == {Role.DETECTOR: "yunet"}
    classic_reference = SwapSettings(face_selector=FaceSelection(mode="reference"))
    assert model_choices(classic_reference, manifest)[Role.TARGET_RECOGNIZER] == "sface"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (SwapSettings(face_detector_model="sface"), "sface is a recognizer, not a detector"),
        (SwapSettings(face_swapper_model="yunet"), "yunet is a detector, not a swapper"),
        (SwapSettings(face_enhancer_model="nope"), "unknown model 'nope'"),
    ],
)
def test_a_model_in_the_wrong_role_is_refused(settings: SwapSettings, message: str) -> None:
    with pytest.raises((SettingsError, ModelError), match=message):
        model_choices(settings, load_manifest())
