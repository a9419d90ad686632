"""Batch specs: expansion of targets x sources into renders, output patterns, swap options checked
by the swap command's own parser, and the errors a wrong spec gets; local folders and real S3."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from facefusion_ray.cli.batch_spec import load_batch_spec
from facefusion_ray.cli.main import build_parser, settings_from
from facefusion_ray.errors import SettingsError
from facefusion_ray.storage import open_filesystem, put_bytes_atomic

if TYPE_CHECKING:
    from tests.s3_server import S3Server

pytest_plugins = ["tests.s3_server"]


def make_files(folder: Path, *relative_paths: str) -> None:
    for relative in relative_paths:
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(b"media")


def write_spec(folder: Path, spec: dict[str, Any]) -> Path:
    path = folder / "batch.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """A spec folder with three videos, an image and two faces."""
    make_files(
        tmp_path,
        "videos/b.mp4",
        "videos/a.mp4",
        "videos/notes.txt",
        "videos/old/z.mp4",
        "one.mov",
        "faces/anna.jpg",
        "faces/bob.png",
    )
    return tmp_path


def minimal_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "targets": ["videos/*.mp4"],
        "sources": ["faces/anna.jpg"],
        "output": "out/{target_stem}__{source_stem}.mp4",
    }
    spec.update(overrides)
    return spec


def test_every_target_meets_every_source_in_a_stable_order(catalog: Path) -> None:
    spec_path = write_spec(
        catalog,
        {
            "targets": ["videos/*.mp4", "one.mov", "videos/a.mp4"],
            "sources": ["faces/bob.png", "faces/anna.jpg"],
            "output": "out/{target_stem}__{source_stem}.mp4",
            "workers": 3,
            "report": "out/batch_report.json",
            "options": {"face_swapper_model": "classic", "output_video_quality": 70},
        },
    )

    spec = load_batch_spec(spec_path)

    pairs = [(Path(r.target).name, tuple(Path(s).name for s in r.sources)) for r in spec.renders]
    assert pairs == [
        ("a.mp4", ("bob.png",)),
        ("a.mp4", ("anna.jpg",)),
        ("b.mp4", ("bob.png",)),
        ("b.mp4", ("anna.jpg",)),
        ("one.mov", ("bob.png",)),
        ("one.mov", ("anna.jpg",)),
    ]  # a.mp4, listed again, is rendered once
    first = spec.renders[0]
    assert first.target == str(catalog / "videos" / "a.mp4")
    assert first.sources == (str(catalog / "faces" / "bob.png"),)
    assert first.output == str(catalog / "out" / "a__bob.mp4")
    assert first.name == "a <- bob"
    assert spec.renders[-1].output == str(catalog / "out" / "one__anna.mp4")
    assert spec.workers == 3
    assert spec.report == catalog / "out" / "batch_report.json"
    assert spec.storage_options == {}
    assert all(render.settings is first.settings for render in spec.renders)
    assert first.settings.output_video_quality == 70
    assert first.settings.workers == 3


def test_relative_locations_do_not_depend_on_the_working_folder(
    catalog: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_path = write_spec(catalog, minimal_spec())
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    spec = load_batch_spec(Path(os.path.relpath(spec_path)))
    assert [render.output for render in spec.renders] == [
        str(catalog / "out" / "a__anna.mp4"),
        str(catalog / "out" / "b__anna.mp4"),
    ]


def test_output_fields_and_recursive_globs(catalog: Path) -> None:
    spec_path = write_spec(
        catalog,
        minimal_spec(
            targets=["videos/**/*.mp4"],
            sources=["faces/*"],
            output="/renders/{index:03d}-{target_name}-{source_name}.mkv",
        ),
    )
    outputs = [render.output for render in load_batch_spec(spec_path).renders]
    assert outputs == [
        "/renders/000-a.mp4-anna.jpg.mkv",
        "/renders/001-a.mp4-bob.png.mkv",
        "/renders/002-b.mp4-anna.jpg.mkv",
        "/renders/003-b.mp4-bob.png.mkv",
        "/renders/004-z.mp4-anna.jpg.mkv",
        "/renders/005-z.mp4-bob.png.mkv",
    ]


def test_a_list_of_images_is_one_person_in_one_render(catalog: Path) -> None:
    spec_path = write_spec(catalog, minimal_spec(sources=[["faces/anna.jpg", "faces/bob.png"]]))
    renders = load_batch_spec(spec_path).renders
    assert [len(render.sources) for render in renders] == [2, 2]
    assert renders[0].name == "a <- anna"


def test_spec_folder_names_are_not_glob_syntax(tmp_path: Path) -> None:
    folder = tmp_path / "take [1]"
    make_files(folder, "videos/a.mp4", "face.jpg")
    spec = load_batch_spec(write_spec(folder, minimal_spec(sources=["face.jpg"])))
    assert [render.target for render in spec.renders] == [str(folder / "videos" / "a.mp4")]


def test_options_mean_what_the_swap_command_line_means(catalog: Path) -> None:
    options = {
        "face_detector_model": "yunet",
        "face_detector_score": 0.6,
        "face_detector_angles": [0, 90],
        "face-swapper-model": "inswapper_128",  # the command line's spelling works too
        "face_enhancer_model": "gfpgan_1.4",
        "face_enhancer_blend": 60,
        "face_mask_padding": [10, 0, 5, 0],
        "face_selector_mode": "reference",
        "reference_face_distance": 0.25,
        "output_video_quality": 90,
        "output_video_preset": "medium",
        "chunk_frames": 32,
        "debug_overlay": True,
        "no_analysis_cache": True,
        "allow_cpu_fallback": False,
        "execution_provider": "cuda",
        "gpu_fraction": 0.5,
        "face_landmarker_model": None,  # the default
    }
    command_line = [
        "swap",
        "--source=s.jpg",
        "--target=t.mp4",
        "--output=o.mp4",
        "--face-detector-model=yunet",
        "--face-detector-score=0.6",
        "--face-detector-angles",
        "0",
        "90",
        "--face-swapper-model=inswapper_128",
        "--face-enhancer-model=gfpgan_1.4",
        "--face-enhancer-blend=60",
        "--face-mask-padding",
        "10",
        "0",
        "5",
        "0",
        "--face-selector-mode=reference",
        "--reference-face-distance=0.25",
        "--output-video-quality=90",
        "--output-video-preset=medium",
        "--chunk-frames=32",
        "--debug-overlay",
        "--no-analysis-cache",
        "--execution-provider=cuda",
        "--gpu-fraction=0.5",
        "--workers=4",
    ]
    spec_path = write_spec(catalog, minimal_spec(options=options, workers=4))

    settings = load_batch_spec(spec_path).renders[0].settings

    assert settings == settings_from(build_parser().parse_args(command_line))
    assert settings.face_detector_angles == (0, 90)
    assert settings.debug_overlay and not settings.use_analysis_cache


def test_no_options_means_the_command_line_defaults(catalog: Path) -> None:
    spec = load_batch_spec(write_spec(catalog, minimal_spec()))
    command_line = ["swap", "--source=s.jpg", "--target=t.mp4", "--output=o.mp4"]
    assert spec.renders[0].settings == settings_from(build_parser().parse_args(command_line))
    assert spec.workers is None


def test_location_options_are_relative_to_the_spec(catalog: Path) -> None:
    options = {"analysis_cache": "cache/analysis", "model_store": "s3://models/zoo"}
    settings = load_batch_spec(write_spec(catalog, minimal_spec(options=options))).renders[0]
    assert settings.settings.analysis_cache == str(catalog / "cache" / "analysis")
    assert settings.settings.model_store == "s3://models/zoo"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"face_swaper_model": "classic"},
            "unknown option 'face_swaper_model'.*face_swapper_model",
        ),
        ({"face_detector_angles": [0, 45]}, "face_detector_angles: invalid choice: 45 "),
        ({"face_detector_angles": 45}, "face_detector_angles: invalid choice: 45 "),
        ({"output_video_quality": "high"}, "output_video_quality: invalid int value: 'high'"),
        ({"output_video_quality": 101}, "output video quality must be between 0 and 100"),
        ({"face_detector_score": [0.5]}, "face_detector_score takes one value, not a list"),
        ({"face_mask_padding": [1, 2]}, "face_mask_padding: expected 4 arguments"),
        ({"face_selector_mode": "all"}, "face_selector_mode: invalid choice: 'all'"),
        ({"debug_overlay": "yes"}, "debug_overlay is true or false"),
        ({"face_swapper_model": True}, "face_swapper_model takes a value"),
        ({"workers": 2}, "workers is not per render.*top level"),
        ({"report": "r.json"}, "report is not per render.*top level"),
        ({"address": "ray://head:10001"}, "address is not per render"),
    ],
)
def test_invalid_options_name_the_option(
    catalog: Path, options: dict[str, Any], message: str
) -> None:
    spec_path = write_spec(catalog, minimal_spec(options=options))
    with pytest.raises(SettingsError, match=message) as raised:
        load_batch_spec(spec_path)
    assert str(spec_path) in str(raised.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"targets": ["videos/*.avi"]}, r"'videos/\*\.avi' matches no file"),
        ({"targets": ["missing.mp4"]}, "'missing.mp4' matches no file"),
        ({"sources": ["faces/*.webp"]}, r"'faces/\*\.webp' matches no file"),
        ({"targets": []}, "'targets' is empty"),
        ({"targets": "videos/a.mp4", "sources": [3]}, "each source is a path"),
        ({"output": "out/{target}.mp4"}, r"unknown field \{target\}"),
        ({"output": "out/{target_stem.upper}.mp4"}, r"unknown field \{target_stem.upper\}"),
        ({"output": "out/{}.mp4"}, r"unknown field \{\}"),
        ({"output": "out/{target_stem.mp4"}, "output pattern"),
        ({"output": "out/{target_stem:d}.mp4"}, "output pattern"),
        (
            {"output": "out/{source_stem}.mp4"},
            "renders 'a <- anna' .* and 'b <- anna' .*both write",
        ),
        ({"output": "{target_name}", "targets": ["one.mov"]}, "would overwrite its input"),
        ({"workers": "two"}, "'workers' must be a whole number"),
        ({"output": None}, "'output' is required"),
        ({"storage_options": ["anon=true"]}, "'storage_options' must be a mapping"),
        ({"target": ["videos/*.mp4"]}, "unknown key 'target'"),
    ],
)
def test_invalid_specs_say_what_is_wrong(
    catalog: Path, overrides: dict[str, Any], message: str
) -> None:
    spec = {key: value for key, value in minimal_spec(**overrides).items() if value is not None}
    with pytest.raises(SettingsError, match=message):
        load_batch_spec(write_spec(catalog, spec))


def test_duplicate_outputs_name_both_renders(catalog: Path) -> None:
    make_files(catalog, "more/a.mp4")
    spec_path = write_spec(
        catalog, minimal_spec(targets=["videos/a.mp4", "more/a.mp4"], output="out/{target_name}")
    )
    with pytest.raises(SettingsError) as raised:
        load_batch_spec(spec_path)
    message = str(raised.value)
    assert str(catalog / "videos" / "a.mp4") in message
    assert str(catalog / "more" / "a.mp4") in message
    assert str(catalog / "out" / "a.mp4") in message


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"absent\.yaml: no such file"):
        load_batch_spec(tmp_path / "absent.yaml")


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    spec_path = tmp_path / "batch.yaml"
    spec_path.write_text(
        'targets: ["a.mp4"]\nsources: ["b.jpg"]\noutput: "out/{target_stem}.mp4\noptions: {}\n',
        encoding="utf-8",
    )
    with pytest.raises(SettingsError, match=r"YAML syntax error at line \d+.* from line 3,"):
        load_batch_spec(spec_path)
    spec_path.write_text("targets:\n  - a.mp4\n - b.mp4\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="YAML syntax error at line 3"):
        load_batch_spec(spec_path)


def test_a_key_written_twice_is_an_error_not_last_one_wins(tmp_path: Path) -> None:
    spec_path = tmp_path / "batch.yaml"
    spec_path.write_text(
        'targets: ["a.mp4"]\nsources: ["b.jpg"]\noutput: "x.mp4"\n'
        "options: {chunk_frames: 8, chunk_frames: 16}\n",
        encoding="utf-8",
    )
    with pytest.raises(SettingsError, match=r"line 4.*'chunk_frames' twice"):
        load_batch_spec(spec_path)


def test_spec_must_be_a_mapping(tmp_path: Path) -> None:
    spec_path = tmp_path / "batch.yaml"
    spec_path.write_text("- a.mp4\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="expected a mapping"):
        load_batch_spec(spec_path)


def test_targets_outputs_and_report_in_s3(
    catalog: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_server.region)
    bucket = s3_server.create_bucket("batch")
    flat_options = s3_server.storage_options()
    for key in ("in/b.mov", "in/a.mov", "in/skip.mp4", "in/deeper/c.mov"):
        filesystem, path = open_filesystem(f"s3://{bucket}/{key}", flat_options)
        put_bytes_atomic(filesystem, b"video", path)
    spec_path = write_spec(
        catalog,
        {
            "targets": [f"s3://{bucket}/in/*.mov", "one.mov"],
            "sources": ["faces/anna.jpg"],
            "output": f"s3://{bucket}/out/{{target_stem}}__{{source_stem}}.mp4",
            "report": f"s3://{bucket}/out/report.json",
            # Nested, as people write YAML; the spec hands them on flat, with dotted keys.
            "storage_options": {
                "client_kwargs": {"endpoint_url": s3_server.endpoint_url},
                "key": s3_server.access_key,
                "secret": s3_server.secret_key,
            },
        },
    )

    spec = load_batch_spec(spec_path)

    assert [(render.target, render.output) for render in spec.renders] == [
        (f"s3://{bucket}/in/a.mov", f"s3://{bucket}/out/a__anna.mp4"),
        (f"s3://{bucket}/in/b.mov", f"s3://{bucket}/out/b__anna.mp4"),
        (str(catalog / "one.mov"), f"s3://{bucket}/out/one__anna.mp4"),
    ]
    assert spec.report == f"s3://{bucket}/out/report.json"
    assert spec.storage_options == flat_options

    empty = spec_path.read_text(encoding="utf-8").replace("in/*.mov", "in/*.avi")
    spec_path.write_text(empty, encoding="utf-8")
    with pytest.raises(
        SettingsError, match=rf"'s3://{bucket}/in/\*\.avi' matches no file"
    ) as raised:
        load_batch_spec(spec_path)
    assert s3_server.secret_key not in str(raised.value)


def test_nightly_defaults_to_the_first_output_s_folder_and_no_pruning(catalog: Path) -> None:
    spec = load_batch_spec(write_spec(catalog, minimal_spec()))
    assert spec.nightly.report_dir == str(catalog / "out")
    assert spec.nightly.cache_max_bytes is None
    assert spec.nightly.keep_reports is None


@pytest.mark.parametrize(
    ("size", "expected"),
    [(0, 0), (1234, 1234), ("500MB", 500_000_000), ("50GiB", 50 * 1024**3), ("2 kib", 2048)],
)
def test_nightly_section(catalog: Path, size: object, expected: int) -> None:
    nightly = {"report_dir": "reports/nightly/", "cache_max_bytes": size, "keep_reports": 7}
    spec = load_batch_spec(write_spec(catalog, minimal_spec(nightly=nightly)))
    assert spec.nightly.report_dir == str(catalog / "reports" / "nightly")
    assert spec.nightly.cache_max_bytes == expected
    assert spec.nightly.keep_reports == 7


def test_nightly_report_dir_in_s3_is_kept_as_a_url(catalog: Path) -> None:
    nightly = {"report_dir": "s3://bucket/reports/"}
    spec = load_batch_spec(write_spec(catalog, minimal_spec(nightly=nightly)))
    assert spec.nightly.report_dir == "s3://bucket/reports"


@pytest.mark.parametrize(
    ("nightly", "message"),
    [
        (["reports"], "'nightly' must be a mapping"),
        ({"report_folder": "r"}, "unknown key 'nightly.report_folder'"),
        ({"report_dir": ""}, "'nightly.report_dir' must be a folder"),
        ({"cache_max_bytes": "lots"}, "'nightly.cache_max_bytes' must be a number of bytes"),
        ({"cache_max_bytes": -1}, "'nightly.cache_max_bytes' must be a number of bytes"),
        ({"cache_max_bytes": True}, "'nightly.cache_max_bytes' must be a number of bytes"),
        ({"keep_reports": 0}, "'nightly.keep_reports' must be a whole number of at least 1"),
        ({"keep_reports": "all"}, "'nightly.keep_reports' must be a whole number"),
    ],
)
def test_invalid_nightly_sections_say_what_is_wrong(
    catalog: Path, nightly: object, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load_batch_spec(write_spec(catalog, minimal_spec(nightly=nightly)))
