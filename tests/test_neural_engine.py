"""A neural swapper through the whole engine, from a model store that holds stand-ins.

The real inswapper and ArcFace weights cannot be fetched here: the test writes a private
manifest whose entries point at generated stand-ins (an identity swapper that returns its
target, and an ArcFace-shaped recognizer) and renders through a store built from it.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from facefusion_ray.assets.fetch import file_sha256
from facefusion_ray.engine.driver import run_swap
from facefusion_ray.settings import SwapSettings
from facefusion_ray.zoo.manifest import default_manifest_path, load_manifest
from tests.media_checks import decoded_frames, psnr
from tests.standin_models import build_standin
from tests.test_enhancer import affine_enhancer
from tests.test_neural_swap import identity_swapper

pytestmark = pytest.mark.usefixtures("local_ray")


@pytest.fixture(scope="module")
def standin_zoo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("standin-zoo")
    manifest = load_manifest()
    document = json.loads(default_manifest_path().read_text())
    builders = {
        "inswapper_128": lambda spec, path: identity_swapper(spec, path, batch="faces"),
        "hyperswap_1a_256": identity_swapper,
        "simswap_256": identity_swapper,
        "crossface_simswap": build_standin,
        "arcface_w600k_r50": build_standin,
        # Paints every face mid-grey: its effect is easy to find and to scale by the blend.
        "gfpgan_1.4": lambda spec, path: affine_enhancer(spec, path, 0.0, (0.0, 0.0, 0.0)),
        "2dfan4": build_standin,
        "fan_68_5": build_standin,
        "xseg_1": build_standin,
    }
    for model_id, build in builders.items():
        path = build(manifest.model(model_id), folder / f"{model_id}.standin.onnx")
        source = document["models"][model_id]["source"]
        source["sha256"] = file_sha256(path)
        source["locations"] = [{"type": "url", "url": path.as_uri()}]
        source.pop("upstream_hash", None)
    manifest_path = folder / "manifest.json"
    manifest_path.write_text(json.dumps(document))
    return str(manifest_path), str(folder / "store")


def render(standin_zoo, clip: Path, output: Path, source: Path, swapper: str = "inswapper_128"):
    manifest_path, store = standin_zoo
    settings = SwapSettings(
        face_swapper_model=swapper,
        manifest_path=manifest_path,
        model_store=store,
        chunk_frames=10,
        output_video_quality=100,
    )
    return run_swap([source, source], clip, output, settings, show_progress=False)


def test_identity_swapper_renders_the_video_back(
    standin_zoo, sample_media, short_group_clip, tmp_path
) -> None:
    output = tmp_path / "neural.mp4"
    report = render(standin_zoo, short_group_clip, output, sample_media.source_tom_hanks)
    assert report.frames_total == 40 and report.faces_swapped > 40
    # The stand-in's batch dimension is free: one call per frame with faces, not per face.
    assert report.model_calls["inswapper_128"] == report.frames_with_faces
    # Two source images, one ArcFace call each, averaged into one identity.
    assert report.source_model_calls["arcface_w600k_r50"] == 2
    for before, after in zip(decoded_frames(short_group_clip), decoded_frames(output), strict=True):
        assert psnr(before, after) > 35.0


@pytest.mark.parametrize("swapper", ["inswapper_128", "hyperswap_1a_256", "simswap_256"])
def test_neural_render_is_reproducible_bit_for_bit(
    standin_zoo, sample_media, short_group_clip, tmp_path, swapper: str
) -> None:
    first, second = tmp_path / "first.mp4", tmp_path / "second.mp4"
    report = render(standin_zoo, short_group_clip, first, sample_media.source_tom_hanks, swapper)
    render(standin_zoo, short_group_clip, second, sample_media.source_tom_hanks, swapper)
    assert report.model_calls[swapper] > 0
    for a, b in zip(decoded_frames(first), decoded_frames(second), strict=True):
        assert np.array_equal(a, b)


def test_enhancer_runs_on_the_swapped_faces_with_its_blend(
    standin_zoo, sample_media, short_group_clip, tmp_path
) -> None:
    manifest_path, store = standin_zoo
    outputs = {}
    for blend in (0, 100):
        output = tmp_path / f"enhanced-{blend}.mp4"
        report = run_swap(
            [sample_media.source_tom_hanks],
            short_group_clip,
            output,
            SwapSettings(
                face_enhancer_model="gfpgan_1.4",
                face_enhancer_blend=blend,
                manifest_path=manifest_path,
                model_store=store,
                chunk_frames=20,
                output_video_quality=100,
            ),
            show_progress=False,
        )
        # One enhancer call per swapped face (its batch is fixed at 1).
        assert report.model_calls["gfpgan_1.4"] == report.faces_swapped
        outputs[blend] = next(decoded_frames(output))
    # Blend 0 keeps the classic swap as it was; blend 100 paints the faces grey.
    assert psnr(outputs[0], outputs[100]) < 30.0
    assert "enhance" in report.stage_seconds


def test_landmarker_occluder_and_angles_run_where_configured(
    standin_zoo, sample_media, short_group_clip, tmp_path
) -> None:
    manifest_path, store = standin_zoo
    report = run_swap(
        [sample_media.source_tom_hanks],
        short_group_clip,
        tmp_path / "configured.mp4",
        SwapSettings(
            face_swapper_model="inswapper_128",
            face_landmarker_model="2dfan4",
            face_occluder_model="xseg_1",
            face_detector_angles=(0, 180),
            manifest_path=manifest_path,
            model_store=store,
            chunk_frames=20,
            use_analysis_cache=False,
        ),
        show_progress=False,
    )
    assert report.frames_total == 40
    assert report.model_calls["yunet"] == 2 * 40  # once per angle
    detected = report.faces_swapped  # many mode: every detected face is swapped
    assert report.model_calls["fan_68_5"] == detected
    assert report.model_calls["2dfan4"] == detected
    assert report.model_calls["xseg_1"] == detected


def test_a_new_landmarker_score_does_not_reuse_the_old_analysis(
    standin_zoo, sample_media, short_group_clip, tmp_path
) -> None:
    """Cached faces are stored after the landmarker score decided between 68 and 5 points:
    a render at another score must analyse again, one at the same score must not."""
    manifest_path, store = standin_zoo

    def render_at(score: float, name: str) -> dict[str, int]:
        settings = SwapSettings(
            face_swapper_model="inswapper_128",
            face_landmarker_model="2dfan4",
            face_landmarker_score=score,
            manifest_path=manifest_path,
            model_store=store,
            chunk_frames=20,
            analysis_cache=str(tmp_path / "analysis"),
        )
        report = run_swap(
            [sample_media.source_tom_hanks],
            short_group_clip,
            tmp_path / name,
            settings,
            show_progress=False,
        )
        return {**report.cache, "2dfan4": report.model_calls.get("2dfan4", 0)}

    first = render_at(0.5, "half.mp4")
    assert first["hits"] == 0 and first["2dfan4"] > 0
    stricter = render_at(0.9, "stricter.mp4")
    assert stricter["hits"] == 0 and stricter["misses"] == 40 and stricter["2dfan4"] > 0
    again = render_at(0.5, "half_again.mp4")
    assert again["hits"] == 40 and again["2dfan4"] == 0
