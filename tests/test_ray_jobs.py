"""The `ray_jobs` entry points end to end on a real local Ray, with targets, outputs and reports
on a real S3 server (SeaweedFS); and what `ray job submit --working-dir .` uploads."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from ray._private.runtime_env.packaging import create_package

from facefusion_ray.engine.job_report import FAILED, RENDERED, UP_TO_DATE
from facefusion_ray.media import probe_media
from facefusion_ray.storage import open_filesystem
from ray_jobs import ab_compare, nightly, render_catalog
from ray_jobs.job_setup import RAY_ADDRESS_ENV

if TYPE_CHECKING:
    from tests.s3_server import S3Server

pytest_plugins = ["tests.s3_server"]

REPOSITORY = Path(__file__).resolve().parent.parent


def write_spec(folder: Path, spec: dict[str, Any]) -> Path:
    path = folder / "catalog.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def packaged_files(folder: Path, tmp_path: Path, excludes: list[str] | None = None) -> set[str]:
    """What Ray's own packaging puts in the working-dir zip of `ray job submit`."""
    package = tmp_path / "working_dir.zip"
    # .gitignore is left out: the upload must be right even with RAY_RUNTIME_ENV_IGNORE_GITIGNORE.
    create_package(str(folder), package, include_gitignore=False, excludes=excludes)
    with zipfile.ZipFile(package) as archive:
        return set(archive.namelist())


def test_the_working_dir_upload_leaves_out_environments_weights_caches_and_media(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    kept = [
        "ray_jobs/nightly.py",
        "facefusion_ray/engine/job.py",
        "models/manifest.json",
        "jobs/catalog.yaml",
        "faces/anna.png",
    ]
    left_out = [
        ".venv/lib/python3.11/site-packages/ray/__init__.py",
        ".git/HEAD",
        "out/demo_swap.mp4",
        "out/reports/nightly-2026-01-05T020000Z.json",
        "weights/inswapper_128.onnx",
        "facefusion_ray/zoo/stand_in.onnx",
        ".cache/facefusion-ray/analysis/v1/key/video/0-64.parquet",
        "facefusion_ray/__pycache__/cli.cpython-311.pyc",
        ".pytest_cache/v/cache/lastfailed",
        "media/clip.mov",
        "media/take.mkv",
        "media/voice.wav",
    ]
    for relative in kept + left_out:
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_bytes(b"x")
    (project / ".rayignore").write_bytes((REPOSITORY / ".rayignore").read_bytes())

    files = packaged_files(project, tmp_path)

    assert set(kept) <= files
    assert not set(left_out) & files
    # The runtime_env `excludes` list documented for one-off exclusions works on top of it.
    (tmp_path / "working_dir.zip").unlink()
    assert "faces/anna.png" not in packaged_files(project, tmp_path, excludes=["/faces"])


def test_the_repository_s_own_upload_holds_the_code_and_nothing_heavy(tmp_path: Path) -> None:
    files = packaged_files(REPOSITORY, tmp_path)
    assert {"ray_jobs/nightly.py", "ray_jobs/render_catalog.py", "ray_jobs/ab_compare.py"} <= files
    assert "facefusion_ray/engine/job.py" in files and "models/manifest.json" in files
    heavy = [name for name in files if name.startswith((".venv/", ".git/", "out/"))]
    assert not heavy
    assert not [name for name in files if name.endswith((".onnx", ".mp4", ".parquet"))]


def test_a_submitted_job_joins_the_cluster_ray_job_submit_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(RAY_ADDRESS_ENV, "10.0.0.5:6379")
    assert nightly.build_parser().parse_args(["s.yaml"]).address == "10.0.0.5:6379"
    assert render_catalog.build_parser().parse_args(["s.yaml"]).address == "10.0.0.5:6379"
    monkeypatch.delenv(RAY_ADDRESS_ENV)
    assert nightly.build_parser().parse_args(["s.yaml"]).address is None
    assert render_catalog.build_parser().parse_args(["s.yaml", "--address", "auto"]).address == (
        "auto"
    )


def s3_object(url: str, storage_options: dict[str, str]) -> dict[str, Any]:
    filesystem, path = open_filesystem(url, storage_options)
    return filesystem.info(path)


def read_s3(url: str, storage_options: dict[str, str]) -> bytes:
    filesystem, path = open_filesystem(url, storage_options)
    return filesystem.cat_file(path)


@pytest.mark.usefixtures("local_ray")
def test_catalog_then_nightly_runs_render_only_what_is_new_in_s3(
    sample_media,
    short_group_clip: Path,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_server.region)
    options = s3_server.storage_options()
    bucket = f"s3://{s3_server.create_bucket('nightly')}"
    filesystem, clip_a = open_filesystem(f"{bucket}/in/clip_a.mp4", options)
    filesystem.put_file(str(short_group_clip), clip_a)
    source = sample_media.source_tom_hanks
    analysis_cache = tmp_path / "analysis"
    spec = write_spec(
        tmp_path,
        {
            "targets": [f"{bucket}/in/*.mp4"],
            "sources": [str(source)],
            "output": f"{bucket}/out/{{target_stem}}__{{source_stem}}.mp4",
            "report": f"{bucket}/out/catalog_report.json",
            "options": {"chunk_frames": 20, "analysis_cache": "analysis"},
            "workers": 2,
            "storage_options": options,
            "nightly": {"cache_max_bytes": 0, "keep_reports": 1},
        },
    )
    run_options = ["--no-progress", "--work-store", str(tmp_path / "work")]
    output_a = f"{bucket}/out/clip_a__{source.stem}.mp4"
    output_b = f"{bucket}/out/clip_b__{source.stem}.mp4"

    # The catalog job renders the one target there is.
    assert render_catalog.main([str(spec), *run_options]) == 0
    assert "1 rendered" in capsys.readouterr().out
    catalog_report = json.loads(read_s3(f"{bucket}/out/catalog_report.json", options))
    assert [render["status"] for render in catalog_report["renders"]] == [RENDERED]
    assert b"1 rendered" in read_s3(f"{bucket}/out/catalog_report.txt", options)
    published_a = s3_object(output_a, options)
    assert list(analysis_cache.rglob("*.parquet")), "the analysis was cached"

    # A new target arrives; the nightly run renders it and nothing else.
    filesystem.put_file(str(short_group_clip), clip_a.replace("clip_a", "clip_b"))
    assert nightly.main([str(spec), *run_options]) == 0
    first_stdout = capsys.readouterr().out
    first = json.loads(read_s3(first_stdout.split("run report: ")[1].strip(), options))
    statuses = {Path(r["output"]).name: r["status"] for r in first["job"]["renders"]}
    assert statuses == {Path(output_a).name: UP_TO_DATE, Path(output_b).name: RENDERED}
    assert first["counts"] == {RENDERED: 1, UP_TO_DATE: 1, FAILED: 0}
    assert first["succeeded"] and not first["nothing_new"]
    assert s3_object(output_a, options)["ETag"] == published_a["ETag"]
    local_b = tmp_path / "clip_b.mp4"
    local_b.write_bytes(read_s3(output_b, options))
    assert probe_media(local_b).frame_count == 40
    # The analysis cache is pruned to the configured size (0 bytes: everything goes).
    assert first["cache_pruning"]["removed_chunks"] >= 2
    assert first["cache_pruning"]["error"] is None
    assert not list(analysis_cache.rglob("*.parquet"))

    # Nothing changed: the second nightly run renders nothing and says so.
    assert nightly.main([str(spec), *run_options]) == 0
    second_stdout = capsys.readouterr().out
    assert "Nothing new to render" in second_stdout
    second_location = second_stdout.split("run report: ")[1].strip()
    second = json.loads(read_s3(second_location, options))
    assert second["nothing_new"] and second["counts"] == {RENDERED: 0, UP_TO_DATE: 2, FAILED: 0}
    summary = read_s3(second_location.replace(".json", ".md"), options).decode()
    assert "Nothing new to render" in summary and "## Up to date" in summary
    assert "## Rendered" not in summary and "## Failed" not in summary
    # keep_reports: 1 leaves only the newest run's report pair.
    reports = sorted(
        Path(path).name for path in filesystem.glob(clip_a.rsplit("/", 2)[0] + "/out/nightly-*")
    )
    assert reports == [Path(second_location).name, Path(second_location).with_suffix(".md").name]


@pytest.mark.usefixtures("local_ray")
def test_a_nightly_with_a_failing_render_finishes_the_others_and_exits_non_zero(
    sample_media,
    short_group_clip: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(8192))
    spec = write_spec(
        tmp_path,
        {
            "targets": [str(short_group_clip), str(corrupt)],
            "sources": [str(sample_media.source_astronaut)],
            "output": "renders/{target_stem}__{source_stem}.mp4",
            "options": {"chunk_frames": 20},
            "nightly": {"report_dir": "reports"},
        },
    )

    exit_code = nightly.main([str(spec), "--no-progress", "--work-store", str(tmp_path / "w")])

    assert exit_code == 1
    good = (
        tmp_path / "renders" / f"{short_group_clip.stem}__{sample_media.source_astronaut.stem}.mp4"
    )
    assert probe_media(good).frame_count == 40
    assert not list((tmp_path / "renders").glob("corrupt__*"))
    (json_report,) = (tmp_path / "reports").glob("nightly-*.json")
    report = json.loads(json_report.read_text())
    assert not report["succeeded"]
    assert report["counts"] == {RENDERED: 1, UP_TO_DATE: 0, FAILED: 1}
    (failure,) = report["failed"]
    assert failure["name"].startswith("corrupt") and "corrupt.mp4" in failure["error"]
    summary = json_report.with_suffix(".md").read_text()
    assert "## Failed" in summary and "corrupt.mp4" in summary and "## Rendered" in summary
    assert "1 failed" in capsys.readouterr().out


@pytest.mark.usefixtures("local_ray")
def test_ab_compare_renders_each_source_and_the_comparison(
    sample_media, short_group_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output_dir = tmp_path / "ab"
    exit_code = ab_compare.main(
        [
            "--target",
            str(short_group_clip),
            "--source",
            str(sample_media.source_tom_hanks),
            "--source",
            str(sample_media.source_astronaut),
            "--output-dir",
            str(output_dir),
            "--chunk-frames",
            "20",
            "--workers",
            "2",
            "--no-progress",
            "--work-store",
            str(tmp_path / "work"),
        ]
    )
    assert exit_code == 0
    stdout = capsys.readouterr().out
    assert "2 rendered" in stdout and f"contact sheet: {output_dir}" in stdout
    assert f"face sheet: {output_dir / 'face_sheet.jpg'}" in stdout
    videos = sorted(output_dir.glob("*.mp4"))
    assert [probe_media(video).frame_count for video in videos] == [40, 40]
    page = (output_dir / "report.html").read_text()
    assert sample_media.source_tom_hanks.stem in page
    assert sample_media.source_astronaut.stem in page
    job = json.loads((output_dir / "ab_report.json").read_text())
    assert [render["status"] for render in job["renders"]] == [RENDERED, RENDERED]
    figures = job["comparison"]["sources"]
    assert [entry["identity_faces"] for entry in figures] == [40, 40]


def test_a_wrong_spec_is_one_error_line_and_exit_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path, {"targets": ["none/*.mp4"], "sources": ["a.png"], "output": "o"})
    assert nightly.main([str(spec), "--no-progress"]) == 1
    assert render_catalog.main([str(spec), "--no-progress"]) == 1
    errors = capsys.readouterr().err
    assert "nightly: error:" in errors and "render_catalog: error:" in errors
    assert "matches no file" in errors
