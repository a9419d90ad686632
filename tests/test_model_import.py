"""Bring your own models: a FaceFusion model folder imported into a store, private weights added
under new ids, and renders from such a store without any network access.

The real weights cannot be fetched here: the folders are laid out like FaceFusion's
`.assets/models/` with generated stand-ins and `.hash` files the tests write, right and wrong.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from facefusion_ray.assets import fetch
from facefusion_ray.assets.fetch import file_sha256
from facefusion_ray.cli.main import main
from facefusion_ray.engine.driver import run_swap
from facefusion_ray.errors import ModelError
from facefusion_ray.inference.execution import ExecutionConfig
from facefusion_ray.paths import CACHE_ENV, cache_root
from facefusion_ray.pipeline.job_models import JobModels
from facefusion_ray.pipeline.model_plan import Role, model_choices
from facefusion_ray.settings import SwapSettings
from facefusion_ray.storage import open_filesystem
from facefusion_ray.zoo.facefusion_import import import_facefusion_folder
from facefusion_ray.zoo.lockfile import LOCK_FILE_NAME, file_crc32, read_lock
from facefusion_ray.zoo.manifest import load_manifest
from facefusion_ray.zoo.model_store import ModelStore
from facefusion_ray.zoo.private_models import add_private_model
from facefusion_ray.zoo.registry import REGISTRY_FILE_NAME
from tests.media_checks import decoded_frames, psnr
from tests.standin_models import build_standin, write_facefusion_hash
from tests.test_neural_swap import identity_swapper

if TYPE_CHECKING:
    from tests.s3_server import S3Server

pytest_plugins = ["tests.s3_server"]

IMPORTED = ("inswapper_128", "arcface_w600k_r50")
# FaceFusion's age/gender/race classifier: no manifest model is published under this name.
UNKNOWN_FILE = "fairface.onnx"


@pytest.fixture(scope="module")
def facefusion_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("facefusion") / ".assets" / "models"
    folder.mkdir(parents=True)
    manifest = load_manifest()
    identity_swapper(manifest.model("inswapper_128"), folder / "inswapper_128.onnx", batch="faces")
    build_standin(manifest.model("arcface_w600k_r50"), folder / "arcface_w600k_r50.onnx")
    (folder / UNKNOWN_FILE).write_bytes(b"a model this project does not know")
    for model in folder.glob("*.onnx"):
        write_facefusion_hash(model)
    return folder


@pytest.fixture
def isolated_node_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache root for this process (node cache included) that shares the pinned
    downloads. Only for tests without Ray: actors keep the environment Ray started with."""
    root = tmp_path / "cache"
    root.mkdir()
    for shared in ("assets", "wheels"):
        (cache_root() / shared).mkdir(parents=True, exist_ok=True)
        (root / shared).symlink_to(cache_root() / shared, target_is_directory=True)
    monkeypatch.setenv(CACHE_ENV, str(root))
    return root


def run_cli(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    code = main(list(arguments))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("facefusion-ray: error:")]


def import_folder(
    capsys: pytest.CaptureFixture[str], folder: Path, store: Path
) -> tuple[int, str, str]:
    return run_cli(
        capsys, "models", "import", "--from-facefusion", str(folder), "--store", str(store)
    )


def store_snapshot(store: Path) -> dict[str, tuple[str, int]]:
    return {
        str(path.relative_to(store)): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime_ns,
        )
        for path in sorted(store.rglob("*"))
        if path.is_file()
    }


def list_rows(capsys: pytest.CaptureFixture[str], store: Path) -> dict[str, dict[str, object]]:
    code, out, err = run_cli(capsys, "models", "list", "--json", "--store", str(store))
    assert code == 0, err
    return {row["id"]: row for row in json.loads(out)}


def test_import_pins_checked_files_and_a_second_import_changes_nothing(
    facefusion_folder: Path,
    tmp_path: Path,
    isolated_node_cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "store"

    code, out, err = import_folder(capsys, facefusion_folder, store)

    assert code == 0, err
    assert f"skipped, no manifest model: {UNKNOWN_FILE}" in out
    lock = json.loads((store / LOCK_FILE_NAME).read_text())
    assert sorted(lock) == sorted(IMPORTED)
    opened = ModelStore(str(store))
    for model_id in IMPORTED:
        model_file = facefusion_folder / f"{model_id}.onnx"
        sha256 = file_sha256(model_file)
        assert f"{model_id}: {model_id}.onnx imported (sha256 {sha256})" in out
        assert lock[model_id]["sha256"] == sha256
        assert lock[model_id]["origin"] == "imported"
        assert lock[model_id]["pulled_from"] == str(model_file.resolve())
        assert lock[model_id]["upstream_hash"] == {
            "algorithm": "crc32",
            "value": model_file.with_suffix(".hash").read_text(),
        }
        assert (store / "sources" / model_id / sha256 / model_file.name).read_bytes() == (
            model_file.read_bytes()
        )
        assert opened.verify(model_id).ok
    # The same preparation as a pulled model: ArcFace gets its FP16 variant.
    assert opened.status("arcface_w600k_r50").variants == {"fp16": True}
    rows = list_rows(capsys, store)
    assert rows["inswapper_128"]["present"] and rows["inswapper_128"]["verified"]
    inswapper_file = (facefusion_folder / "inswapper_128.onnx").resolve()
    assert rows["inswapper_128"]["origin"] == f"imported: {inswapper_file}"
    assert rows["simswap_256"]["origin"] is None and not rows["simswap_256"]["present"]

    before = store_snapshot(store)
    code, out, err = import_folder(capsys, facefusion_folder, store)

    assert code == 0, err
    assert "inswapper_128: inswapper_128.onnx already in the store" in out
    assert "built" not in out
    assert store_snapshot(store) == before


def test_facefusion_yunet_file_imports_as_yunet_2023_mar(
    tmp_path: Path, isolated_node_cache: Path
) -> None:
    """FaceFusion's `yunet` is yunet_2023_mar.onnx: a FaceFusion folder imports whole."""
    folder = tmp_path / "models"
    folder.mkdir()
    yunet = folder / "yunet_2023_mar.onnx"
    shutil.copyfile(ModelStore().local_path("yunet"), yunet)
    write_facefusion_hash(yunet)

    imported = import_facefusion_folder(ModelStore(str(tmp_path / "store")), folder)

    assert [model.model_id for model in imported.imported] == ["yunet_2023_mar"]
    assert not imported.skipped and not imported.refused


def test_wrong_or_missing_hash_and_contradicted_pins_are_refused_by_name(
    facefusion_folder: Path,
    tmp_path: Path,
    isolated_node_cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "models"
    shutil.copytree(facefusion_folder, folder)
    manifest = load_manifest()
    wrong = identity_swapper(manifest.model("simswap_256"), folder / "simswap_256.onnx")
    write_facefusion_hash(wrong, crc32="0badc0de")
    identity_swapper(manifest.model("hyperswap_1a_256"), folder / "hyperswap_1a_256.onnx")
    store = tmp_path / "store"

    code, out, err = import_folder(capsys, folder, store)

    assert code == 1
    [error] = error_lines(err)
    actual_crc32 = file_crc32(wrong)
    assert f"simswap_256.onnx has crc32 {actual_crc32}, but simswap_256.hash says 0badc0de" in error
    assert "hyperswap_1a_256.onnx has no hyperswap_1a_256.hash beside it" in error
    # The files that check out are imported all the same.
    assert "inswapper_128: inswapper_128.onnx imported" in out
    lock = json.loads((store / LOCK_FILE_NAME).read_text())
    assert sorted(lock) == sorted(IMPORTED)
    assert not (store / "sources" / "simswap_256").exists()
    assert not (store / "sources" / "hyperswap_1a_256").exists()

    # Other weights under a pinned name contradict the store's pin, even with a matching .hash.
    changed = tmp_path / "changed"
    changed.mkdir()
    retrained = identity_swapper(
        manifest.model("inswapper_128"), changed / "inswapper_128.onnx", source_gain=0.5
    )
    write_facefusion_hash(retrained)
    before = store_snapshot(store)

    code, out, err = import_folder(capsys, changed, store)

    assert code == 1
    [error] = error_lines(err)
    pinned = lock["inswapper_128"]["sha256"]
    assert f"inswapper_128.onnx has sha256 {file_sha256(retrained)}" in error
    assert f"model inswapper_128 is pinned at {pinned}" in error
    assert store_snapshot(store) == before


def test_render_from_an_imported_store_needs_no_network(
    facefusion_folder: Path,
    sample_media,
    short_group_clip: Path,
    tmp_path: Path,
    isolated_node_cache: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = tmp_path / "store"
    ModelStore(str(store)).pull("yunet")  # the embedded detector, as `models pull` stores it
    code, _, err = import_folder(capsys, facefusion_folder, store)
    assert code == 0, err

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model source was contacted")

    # Every download of a pinned or unpinned source ends in one of these two.
    monkeypatch.setattr(fetch, "_download_url", no_network)
    monkeypatch.setattr(fetch, "_cached_wheel", no_network)
    output = tmp_path / "imported.mp4"

    report = run_swap(
        [sample_media.source_tom_hanks],
        short_group_clip,
        output,
        SwapSettings(
            face_swapper_model="inswapper_128",
            model_store=str(store),
            output_video_quality=100,
            use_analysis_cache=False,
        ),
        show_progress=False,
        sequential=True,
    )

    assert report.frames_total == 40 and report.faces_swapped > 40
    assert report.model_calls["inswapper_128"] == report.frames_with_faces
    assert report.source_model_calls["arcface_w600k_r50"] == 1
    # The identity stand-in returns its target: the video comes back as it was.
    for before, after in zip(decoded_frames(short_group_clip), decoded_frames(output), strict=True):
        assert psnr(before, after) > 35.0


@pytest.mark.usefixtures("local_ray")
def test_added_model_renders_under_its_id_and_a_changed_file_is_refused(
    facefusion_folder: Path,
    sample_media,
    short_group_clip: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "store"
    ModelStore(str(store)).pull("yunet")
    assert import_folder(capsys, facefusion_folder, store)[0] == 0
    weights = identity_swapper(
        load_manifest().model("inswapper_128"), tmp_path / "studio_swapper_v2.onnx", batch="faces"
    )
    add = ("models", "add", "studio_swapper", str(weights), "--like", "inswapper_128")

    code, out, err = run_cli(capsys, *add, "--store", str(store))

    assert code == 0, err
    sha256 = file_sha256(weights)
    assert f"studio_swapper: added like inswapper_128 (sha256 {sha256})" in out
    registry = json.loads((store / REGISTRY_FILE_NAME).read_text())
    assert registry["studio_swapper"]["like"] == "inswapper_128"
    assert registry["studio_swapper"]["sha256"] == sha256
    row = list_rows(capsys, store)["studio_swapper"]
    assert row["kind"] == "swapper" and row["present"] and row["verified"]
    assert row["origin"] == f"added like inswapper_128: {weights.resolve().as_uri()}"
    before = store_snapshot(store)
    code, out, err = run_cli(capsys, *add, "--store", str(store))
    assert code == 0, err
    assert "studio_swapper: already registered" in out
    assert store_snapshot(store) == before

    report = run_swap(
        [sample_media.source_tom_hanks],
        short_group_clip,
        tmp_path / "studio.mp4",
        SwapSettings(face_swapper_model="studio_swapper", model_store=str(store), chunk_frames=20),
        show_progress=False,
    )

    assert report.model_calls["studio_swapper"] == report.frames_with_faces > 0
    assert "inswapper_128" not in report.model_calls

    identity_swapper(
        load_manifest().model("inswapper_128"), weights, batch="faces", source_gain=0.5
    )
    code, out, err = run_cli(capsys, *add, "--store", str(store))
    assert code == 1
    [error] = error_lines(err)
    assert f"sha256 {sha256}" in error and "register changed weights under a new id" in error
    assert store_snapshot(store) == before
    # Nor can a repair take the changed file in place of the pinned one.
    shutil.rmtree(store / "sources" / "studio_swapper")
    with pytest.raises(ModelError, match="cannot fetch model studio_swapper: sha256 mismatch"):
        ModelStore(str(store)).pull("studio_swapper", repair=True)


def test_added_model_has_its_like_models_contract_and_preparation(
    tmp_path: Path, isolated_node_cache: Path
) -> None:
    url = str(tmp_path / "store")
    store = ModelStore(url)
    manifest = load_manifest()
    like = manifest.model("simswap_256")
    weights = identity_swapper(like, tmp_path / "simswap_studio.onnx")

    result = add_private_model(store, "studio_simswap", str(weights), "simswap_256")

    assert result.changed and len(result.built) == 2  # the base file and the FP16 variant
    spec = ModelStore(url).manifest.model("studio_simswap")
    assert (spec.kind, spec.size, spec.template) == (like.kind, like.size, like.template)
    assert spec.inputs == like.inputs and spec.outputs == like.outputs
    assert spec.parameters == like.parameters and spec.variants == like.variants
    assert spec.source.sha256 == file_sha256(weights) and spec.vendor == "private"
    status = ModelStore(url).status("studio_simswap")
    assert status.verified and status.variants == {"fp16": True}
    # Jobs that name the store resolve the id; jobs on another store do not.
    settings = SwapSettings(face_swapper_model="studio_simswap", model_store=url)
    manifest = JobModels(ExecutionConfig()).store_for(settings).manifest
    assert manifest.model("studio_simswap") == spec
    # Its roles come from the manifest fields it copied from simswap_256.
    assert model_choices(settings, manifest) == {
        Role.DETECTOR: "yunet",
        Role.SWAPPER: "studio_simswap",
        Role.SOURCE_RECOGNIZER: "arcface_w600k_r50",
        Role.EMBEDDING_CONVERTER: "crossface_simswap",
    }
    elsewhere = replace(settings, model_store=str(tmp_path / "other"))
    with pytest.raises(ModelError, match="unknown model 'studio_simswap'"):
        JobModels(ExecutionConfig()).plan_for(elsewhere)

    recognizer = build_standin(manifest.model("arcface_w600k_r50"), tmp_path / "arcface.onnx")
    with pytest.raises(ModelError, match="does not have the tensors of simswap_256: missing"):
        add_private_model(store, "not_a_swapper", str(recognizer), "simswap_256")
    with pytest.raises(ModelError, match="inswapper_128 is a manifest model"):
        add_private_model(store, "inswapper_128", str(weights), "simswap_256")
    with pytest.raises(ModelError, match="is not usable"):
        add_private_model(store, "../escape", str(weights), "simswap_256")
    with pytest.raises(ModelError, match="is not a file"):
        add_private_model(store, "missing", str(tmp_path / "missing.onnx"), "simswap_256")
    assert sorted(store.registrations()) == ["studio_simswap"]


def test_import_and_add_on_an_object_store(
    facefusion_folder: Path,
    s3_server: S3Server,
    tmp_path: Path,
    isolated_node_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    url = f"s3://{s3_server.create_bucket('byo')}/zoo"
    weights = identity_swapper(
        load_manifest().model("inswapper_128"), tmp_path / "studio.onnx", batch="faces"
    )

    first = import_facefusion_folder(ModelStore(url), facefusion_folder)
    added = add_private_model(ModelStore(url), "studio_swapper", str(weights), "inswapper_128")
    again = import_facefusion_folder(ModelStore(url), facefusion_folder)

    assert sorted(model.model_id for model in first.imported) == sorted(IMPORTED)
    assert all(model.changed for model in first.imported) and added.changed
    assert not any(model.changed or model.built for model in again.imported)
    filesystem, root = open_filesystem(url)
    assert sorted(read_lock(filesystem, root)) == sorted([*IMPORTED, "studio_swapper"])
    # Another node with an empty cache sees the registration and gets verified files.
    other_node = ModelStore(url, node_cache=tmp_path / "other-node")
    assert other_node.registrations()["studio_swapper"].sha256 == file_sha256(weights)
    assert other_node.local_path("studio_swapper").is_file()
    assert other_node.verify("studio_swapper").ok and other_node.verify("inswapper_128").ok
