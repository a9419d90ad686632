"""The model zoo manifest: every entry against a stand-in built from it, the constants taken
from FaceFusion 3.8.1, the FP16 variant and symbolic-size preparation, and what the manifest
refuses. Stand-ins are test doubles (see standin_models.py), never the real weights."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from standin_models import build_standin, is_standin

from facefusion_ray.analysis.templates import WARP_TEMPLATES
from facefusion_ray.assets.fetch import UrlSource, fetch_asset
from facefusion_ray.errors import ModelError
from facefusion_ray.zoo.manifest import ModelSpec, default_manifest_path, load_manifest
from facefusion_ray.zoo.preparation import (
    get_recipe,
    sidecar_path,
    write_prepared_model,
    write_prepared_variant,
)
from tests.prepared_files import is_prepared_intact

MANIFEST = load_manifest()
MODEL_IDS = sorted(MANIFEST.models)
FP16_VARIANT_IDS = sorted(m for m, spec in MANIFEST.models.items() if "fp16" in spec.variants)
UPSTREAM_ONLY_IDS = sorted(m for m, spec in MANIFEST.models.items() if spec.source.sha256 is None)
ORT_TYPES = {"float32": "tensor(float)", "float16": "tensor(float16)", "int64": "tensor(int64)"}
# FP16 keeps 11 significant bits: every rounding is off by at most this, relative to the value.
FP16_UNIT_ROUNDOFF = 2.0**-11
FACEFUSION_RELEASES = "https://github.com/facefusion/facefusion-assets/releases/download/"


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the inswapper emap is unused by nodes; ORT warns about it
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def int_list(spec: ModelSpec, name: str) -> list[int]:
    value = spec.parameters[name]
    assert isinstance(value, tuple)
    return [int(item) for item in value]


def random_feeds(
    model: ort.InferenceSession, spec: ModelSpec, seed: int, size: tuple[int, int] | None = None
) -> dict[str, np.ndarray]:
    """Inputs for `model`, its symbolic height and width set to `size` (default: the spec's)."""
    width, height = size or spec.size
    named = {"height": height, "width": width}
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in model.get_inputs():
        shape = [named.get(dim, dim) for dim in value.shape]
        feeds[value.name] = rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    return feeds


@pytest.fixture(scope="module")
def standins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("standins")
    return {
        model_id: build_standin(spec, folder / f"{model_id}.onnx")
        for model_id, spec in MANIFEST.models.items()
    }


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_standin_has_the_manifests_tensors(model_id: str, standins: dict[str, Path]) -> None:
    spec = MANIFEST.model(model_id)
    model = session(standins[model_id])

    for values, tensors in ((model.get_inputs(), spec.inputs), (model.get_outputs(), spec.outputs)):
        assert [v.name for v in values] == [t.name for t in tensors]
        assert [tuple(v.shape) for v in values] == [t.shape for t in tensors]
        assert [v.type for v in values] == [ORT_TYPES[t.dtype] for t in tensors]


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_standin_outputs_follow_its_inputs(model_id: str, standins: dict[str, Path]) -> None:
    spec = MANIFEST.model(model_id)
    model = session(standins[model_id])

    first = model.run(None, random_feeds(model, spec, seed=1))
    second = model.run(None, random_feeds(model, spec, seed=2))

    for tensor, a, b in zip(spec.outputs, first, second, strict=True):
        static = [dim if isinstance(dim, int) else None for dim in tensor.shape]
        assert all(want in (None, got) for want, got in zip(static, a.shape, strict=True))
        assert not np.allclose(a, b), f"{tensor.name} ignores the inputs"


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_standin_says_it_is_one(model_id: str, standins: dict[str, Path]) -> None:
    model = onnx.load(str(standins[model_id]))

    assert is_standin(model)
    assert "stand-in" in model.producer_name and "stand-in" in model.doc_string
    assert "NOT the real model" in model.doc_string
    assert model.ir_version == 10 and 17 <= model.opset_import[0].version <= 21


@pytest.mark.parametrize("model_id", ["arcface_w600k_r50", "hyperswap_1a_256", "2dfan4"])
def test_standin_with_a_batch(model_id: str, tmp_path: Path) -> None:
    spec = MANIFEST.model(model_id)
    model = session(build_standin(spec, tmp_path / "batched.onnx", batch=3))

    outputs = model.run(None, random_feeds(model, spec, seed=4))

    assert all(value.shape[0] == 3 for value in model.get_inputs())
    assert [o.shape for o in outputs] == [(3, *t.shape[1:]) for t in spec.outputs]


@pytest.mark.parametrize("model_id", ["scrfd_2.5g", "retinaface_10g"])
def test_scrfd_style_detectors(model_id: str, standins: dict[str, Path]) -> None:
    spec = MANIFEST.model(model_id)
    assert spec.parameters["strides"] == (8, 16, 32)
    assert spec.parameters["anchors_per_location"] == 2
    assert spec.float_parameter("score_threshold") == 0.5
    assert spec.float_parameter("nms_threshold") == 0.4
    assert spec.parameters["sizes"] == (160, 320, 480, 512, 640)
    image = spec.inputs[0]
    assert (image.name, image.channel_order, image.layout) == ("input", "BGR", "NCHW")
    assert (image.pixel_scale, image.mean, image.std) == (1.0, (127.5,) * 3, (128.0,) * 3)
    assert [t.shape[1] for t in spec.outputs] == [1] * 3 + [4] * 3 + [10] * 3

    # One row per anchor: (height / stride) * (width / stride) * 2, at any supported size.
    model = session(standins[model_id])
    for size in (640, 320):
        rows = [o.shape[0] for o in model.run(None, random_feeds(model, spec, 3, (size, size)))]
        assert rows == [(size // stride) ** 2 * 2 for stride in (8, 16, 32)] * 3


def test_yoloface() -> None:
    spec = MANIFEST.model("yoloface_8n")
    rows, anchors = spec.outputs[0].shape[1:]
    assert spec.size == (640, 640) and spec.inputs[0].shape == (1, 3, 640, 640)
    assert anchors == sum((640 // stride) ** 2 for stride in int_list(spec, "strides"))
    assert rows == 4 + 1 + spec.parameters["landmarks"] * spec.parameters["keypoint_values"]
    assert spec.inputs[0].pixel_scale == 1 / 255 and spec.inputs[0].channel_order == "BGR"


def test_landmarkers_and_recognizer() -> None:
    fan = MANIFEST.model("2dfan4")
    assert fan.size == (256, 256) and fan.inputs[0].pixel_scale == 1 / 255
    assert [t.shape for t in fan.outputs] == [(1, 68, 3), (1, 68, 64, 64)]
    assert fan.parameters["crop_box_size"] == 195 and fan.parameters["heatmap_size"] == 64
    fan_68_5 = MANIFEST.model("fan_68_5")
    assert fan_68_5.template == "ffhq_512" and fan_68_5.inputs[0].shape == (1, 5, 2)
    arcface = MANIFEST.model("arcface_w600k_r50")
    image = arcface.inputs[0]
    assert (arcface.template, arcface.size) == ("arcface_112_v2", (112, 112))
    assert (image.channel_order, image.mean, image.std) == ("RGB", (127.5,) * 3, (127.5,) * 3)
    assert arcface.outputs[0].shape == (1, 512)


def test_templates_are_facefusions() -> None:
    assert {spec.template for spec in MANIFEST.models.values()} - {None} <= set(WARP_TEMPLATES)
    # FaceFusion 3.8.1 face_helper.WARP_TEMPLATE_SET['arcface_128'] and ['ffhq_512']
    arcface_128 = [
        [0.36167656, 0.40387734],
        [0.63696719, 0.40235469],
        [0.50019687, 0.56044219],
        [0.38710391, 0.72160547],
        [0.61507734, 0.72034453],
    ]
    ffhq_512 = [
        [0.37691676, 0.46864664],
        [0.62285697, 0.46912813],
        [0.50123859, 0.61331904],
        [0.39308822, 0.72541100],
        [0.61150205, 0.72490465],
    ]
    assert np.array_equal(WARP_TEMPLATES["arcface_128"], arcface_128)
    assert np.array_equal(WARP_TEMPLATES["ffhq_512"], ffhq_512)


@pytest.mark.parametrize(
    ("model_id", "size", "template", "mean", "std", "output_mean", "output_std"),
    [
        ("inswapper_128", 128, "arcface_128", 0.0, 1.0, 0.0, 1.0),
        ("inswapper_128_fp16", 128, "arcface_128", 0.0, 1.0, 0.0, 1.0),
        ("hyperswap_1a_256", 256, "arcface_128", 0.5, 0.5, 0.5, 0.5),
        # FaceFusion does not undo SimSwap's ImageNet normalisation on the output.
        ("simswap_256", 256, "arcface_112_v1", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 0, 1),
    ],
)
def test_swapper_constants(
    model_id: str,
    size: int,
    template: str,
    mean: float | tuple[float, ...],
    std: float | tuple[float, ...],
    output_mean: float,
    output_std: float,
) -> None:
    spec = MANIFEST.model(model_id)
    target = next(t for t in spec.inputs if t.name == "target")
    source = next(t for t in spec.inputs if t.name == "source")

    assert (spec.kind, spec.size, spec.template) == ("swapper", (size, size), template)
    assert {t.name for t in spec.inputs} == {"target", "source"}
    assert target.shape == (1, 3, size, size) and source.shape == (1, 512)
    assert (target.channel_order, target.pixel_scale) == ("RGB", 1 / 255)
    assert target.mean == (mean if isinstance(mean, tuple) else (mean,) * 3)
    assert target.std == (std if isinstance(std, tuple) else (std,) * 3)
    image = spec.outputs[0]
    assert (image.shape, image.channel_order) == ((1, 3, size, size), "RGB")
    assert (image.mean, image.std) == ((float(output_mean),) * 3, (float(output_std),) * 3)
    assert spec.parameters["recognizer"] == "arcface_w600k_r50"
    assert int_list(spec, "pixel_boost_sizes")[0] == size


def test_inswapper_emap_is_the_last_initializer(standins: dict[str, Path], tmp_path: Path) -> None:
    spec = MANIFEST.model("inswapper_128")
    assert spec.parameters["emap_initializer"] == "last"
    assert spec.parameters["emap_shape"] == (512, 512)
    assert [t.name for t in spec.inputs] == ["target", "source"]
    assert spec.fp16_model == "inswapper_128_fp16" and "fp16" not in spec.variants
    recipe = get_recipe(spec.preparation.recipe, spec.preparation.version)

    prepared = tmp_path / "inswapper_128.onnx"
    write_prepared_model(standins["inswapper_128"], prepared, recipe)
    converted = tmp_path / "inswapper_128_fp16.onnx"
    write_prepared_variant(standins["inswapper_128"], converted, recipe, get_recipe("float16", 1))

    for path in (standins["inswapper_128"], prepared, converted):
        emap = onnx.numpy_helper.to_array(onnx.load(str(path)).graph.initializer[-1])
        assert emap.shape == (512, 512) and emap.dtype == np.float32


def test_enhancer_and_occluder() -> None:
    gfpgan = MANIFEST.model("gfpgan_1.4")
    image = gfpgan.inputs[0]
    assert (gfpgan.size, gfpgan.template) == ((512, 512), "ffhq_512")
    assert (image.shape, image.channel_order, image.mean, image.std) == (
        (1, 3, 512, 512),
        "RGB",
        (0.5,) * 3,
        (0.5,) * 3,
    )
    xseg = MANIFEST.model("xseg_1")
    assert (xseg.inputs[0].layout, xseg.inputs[0].shape) == ("NHWC", (1, 256, 256, 3))
    assert xseg.outputs[0].shape == (1, 256, 256, 1)


@pytest.mark.parametrize("model_id", UPSTREAM_ONLY_IDS)
def test_upstream_only_models_have_facefusions_hash_file(model_id: str) -> None:
    source = MANIFEST.model(model_id).source
    urls = [location.url for location in source.locations if isinstance(location, UrlSource)]

    assert source.upstream_hash is not None and source.upstream_hash.algorithm == "crc32"
    hash_urls = [s.url for s in source.upstream_hash.sources if isinstance(s, UrlSource)]
    assert urls and urls[0].startswith(FACEFUSION_RELEASES)
    assert hash_urls == [url.removesuffix(".onnx") + ".hash" for url in urls]
    assert all(url.rsplit("/", 1)[1] == source.file for url in urls)


def test_model_source_makes_pinned_assets() -> None:
    upstream = MANIFEST.model("gfpgan_1.4").source
    pinned = MANIFEST.model("yunet").source
    digest = "ab" * 32
    assert pinned.sha256 is not None

    assert upstream.asset("gfpgan_1.4", digest).sha256 == digest
    assert pinned.asset("yunet", pinned.sha256).filename == pinned.file
    with pytest.raises(ModelError, match="contradicts"):
        pinned.asset("yunet", digest)


@pytest.mark.parametrize("model_id", FP16_VARIANT_IDS)
def test_float16_variant_matches_fp32(
    model_id: str, standins: dict[str, Path], tmp_path: Path
) -> None:
    spec = MANIFEST.model(model_id)
    base = get_recipe(spec.preparation.recipe, spec.preparation.version)
    variant = spec.variants["fp16"]
    fp32_path, fp16_path = tmp_path / "fp32.onnx", tmp_path / "fp16.onnx"
    write_prepared_model(standins[model_id], fp32_path, base)
    digest = write_prepared_variant(
        standins[model_id], fp16_path, base, get_recipe(variant.recipe, variant.version)
    )
    fp32, fp16 = session(fp32_path), session(fp16_path)
    feeds = random_feeds(fp32, spec, seed=5)

    expected, actual = fp32.run(None, feeds), fp16.run(None, feeds)

    assert is_prepared_intact(fp16_path) and digest in sidecar_path(fp16_path).read_text()
    assert any(
        init.data_type == onnx.TensorProto.FLOAT16
        for init in onnx.load(str(fp16_path)).graph.initializer
    )
    assert [v.type for v in (*fp16.get_inputs(), *fp16.get_outputs())] == [
        ORT_TYPES[t.dtype] for t in (*spec.inputs, *spec.outputs)
    ]
    # Each value on a stand-in's path (input, weights, the intermediate, the output) is rounded
    # to FP16 at most once, each time by at most one unit roundoff of its magnitude; with
    # weights scaled by 1/sqrt(fan-in) the sums do not cancel much, so 8 units of the output's
    # largest magnitude bound the difference (measured: under 1.5 units).
    for want, got in zip(expected, actual, strict=True):
        assert np.abs(got - want).max() <= 8 * FP16_UNIT_ROUNDOFF * np.abs(want).max()


@pytest.mark.parametrize("model_id", ["yunet", "sface"])
def test_float16_variant_of_the_embedded_models(model_id: str, tmp_path: Path) -> None:
    # The real graphs (folded from the int8 builds) go through the same converter; ~50 layers
    # each add about one unit roundoff, so 2 % of the output's largest magnitude is the bound
    # (measured: 0.6 %).
    spec = MANIFEST.model(model_id)
    assert spec.source.sha256 is not None
    source = fetch_asset(spec.source.asset(model_id, spec.source.sha256))
    base = get_recipe(spec.preparation.recipe, spec.preparation.version)
    fp32_path, fp16_path = tmp_path / "fp32.onnx", tmp_path / "fp16.onnx"
    write_prepared_model(source, fp32_path, base)
    write_prepared_variant(source, fp16_path, base, get_recipe("float16", 1))
    fp32, fp16 = session(fp32_path), session(fp16_path)
    shape = [int(dim) for dim in spec.inputs[0].shape]
    feeds = {
        spec.inputs[0].name: np.random.default_rng(9).uniform(0, 255, shape).astype(np.float32)
    }

    for want, got in zip(fp32.run(None, feeds), fp16.run(None, feeds), strict=True):
        assert got.dtype == np.float32
        assert np.abs(got - want).max() <= 0.02 * np.abs(want).max()


@pytest.mark.parametrize(
    ("model_id", "sizes"), [("gfpgan_1.4", (512, 384)), ("xseg_1", (256, 192))]
)
def test_symbolic_spatial_dims_accept_other_sizes(
    model_id: str, sizes: tuple[int, int], standins: dict[str, Path], tmp_path: Path
) -> None:
    spec = MANIFEST.model(model_id)
    base = get_recipe(spec.preparation.recipe, spec.preparation.version)
    prepared = tmp_path / "symbolic.onnx"
    write_prepared_model(standins[model_id], prepared, base, symbolic_spatial=True)
    model = session(prepared)

    for size in sizes:
        (output,) = model.run(None, random_feeds(model, spec, seed=7, size=(size, size)))
        spatial = output.shape[1:3] if spec.outputs[0].layout == "NHWC" else output.shape[2:]
        assert tuple(spatial) == (size, size)


def test_symbolic_spatial_dims_leave_shape_baked_graphs_fixed(
    standins: dict[str, Path], tmp_path: Path
) -> None:
    # The stand-in's dense head reshapes to a constant shape, as YOLO heads do.
    prepared = tmp_path / "yoloface.onnx"
    write_prepared_model(
        standins["yoloface_8n"], prepared, get_recipe("as_published", 1), symbolic_spatial=True
    )

    assert session(prepared).get_inputs()[0].shape == [1, 3, 640, 640]


def edit_manifest(change: Callable[[dict[str, Any]], object], tmp_path: Path) -> Path:
    document = json.loads(default_manifest_path().read_text())
    change(document["models"])
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (
            lambda models: models["gfpgan_1.4"]["variants"]["fp16"].update(recipe="bfloat16"),
            "models.gfpgan_1.4.variants.fp16.recipe 'bfloat16'",
        ),
        (
            lambda models: models["gfpgan_1.4"]["variants"]["fp16"].update(version=2),
            "asks for float16 r2",
        ),
        (
            lambda models: models["xseg_1"]["source"].update(upstream_hash=None),
            "models.xseg_1.source needs a sha256 pin or an upstream_hash",
        ),
        (
            lambda models: models["inswapper_128"].update(fp16_model="inswapper_128_half"),
            "'inswapper_128_half', which is not in the manifest",
        ),
        (
            lambda models: models["inswapper_128"].update(
                variants={"fp16": models["xseg_1"]["variants"]["fp16"]}
            ),
            "exclude each other",
        ),
        (
            lambda models: models["inswapper_128"].update(fp16_model="simswap_256"),
            "differs in kind, size or tensors",
        ),
        (
            lambda models: models["2dfan4"]["source"]["upstream_hash"].update(algorithm="md5"),
            "algorithm 'md5'",
        ),
        (
            lambda models: models["2dfan4"].update(variant={}),
            "unknown keys ['variant']",
        ),
        (
            lambda models: models["2dfan4"]["parameters"].update(symbolic_spatial="yes"),
            "symbolic_spatial must be true or false",
        ),
    ],
    ids=[
        "unknown-variant-recipe",
        "variant-recipe-version",
        "no-pin-no-upstream-hash",
        "unknown-fp16-model",
        "fp16-model-and-own-variant",
        "fp16-model-of-other-kind",
        "unknown-hash-algorithm",
        "misspelt-key",
        "symbolic-spatial-not-bool",
    ],
)
def test_manifest_refuses(
    change: Callable[[dict[str, Any]], object], complaint: str, tmp_path: Path
) -> None:
    with pytest.raises(ModelError, match=re.escape(complaint)):
        load_manifest(edit_manifest(change, tmp_path))


def test_manifest_records_its_facefusion_reference() -> None:
    reference = json.loads(default_manifest_path().read_text())["reference"]

    assert reference["repository"] == "facefusion/facefusion"
    assert reference["version"] == "3.8.1"
    assert re.fullmatch(r"[0-9a-f]{40}", reference["commit"])
