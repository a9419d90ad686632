"""The example specs the docs use (examples/): each is read by the real spec loader on the
sample media, and the nightly one is run for real on a short clip, so they cannot rot."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from facefusion_ray.cli.batch_spec import load_batch_spec
from facefusion_ray.engine.job_report import RENDERED
from facefusion_ray.media import probe_media
from facefusion_ray.media.ffmpeg_tool import ffmpeg_executable
from ray_jobs import nightly

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SPECS = sorted(EXAMPLES.glob("*.yaml"))


def examples_folder(folder: Path, sample_media, clip: Path) -> Path:
    """A copy of examples/ with its videos/ and faces/ filled the way get_samples.py does."""
    for spec in SPECS:
        shutil.copyfile(spec, folder / spec.name)
    (folder / "videos").mkdir()
    shutil.copyfile(clip, folder / "videos" / sample_media.target_video.name)
    (folder / "faces").mkdir()
    for face in (sample_media.source_tom_hanks, sample_media.source_astronaut):
        shutil.copyfile(face, folder / "faces" / face.name)
    return folder


def test_the_examples_are_the_three_specs_the_docs_use() -> None:
    assert [spec.name for spec in SPECS] == ["ab.yaml", "catalog.yaml", "nightly.yaml"]


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_each_example_spec_expands_to_renders_of_the_sample_media(
    spec: Path, sample_media, tmp_path: Path
) -> None:
    folder = examples_folder(tmp_path, sample_media, sample_media.target_video)
    loaded = load_batch_spec(folder / spec.name)
    assert loaded.renders, "every example renders something"
    for render in loaded.renders:
        assert Path(render.target).is_file()
        assert all(Path(source).is_file() for source in render.sources)
        assert Path(render.output).is_relative_to(folder / "out")
    if spec.name == "nightly.yaml":
        assert loaded.nightly.report_dir == str(folder / "out" / "nightly" / "reports")
        assert loaded.nightly.cache_max_bytes == 20 * 1024**3
        assert loaded.nightly.keep_reports == 30


def test_get_samples_places_what_the_specs_name(sample_media, tmp_path: Path) -> None:
    import importlib.util

    loader = importlib.util.spec_from_file_location("get_samples", EXAMPLES / "get_samples.py")
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    copies = module.copy_samples(tmp_path)
    assert {path.relative_to(tmp_path).as_posix() for path in copies} == {
        "videos/group_target.mp4",
        "faces/source_tom_hanks.png",
        "faces/source_astronaut.png",
    }
    for spec in SPECS:
        shutil.copyfile(spec, tmp_path / spec.name)
        assert load_batch_spec(tmp_path / spec.name).renders


@pytest.mark.usefixtures("local_ray")
def test_the_nightly_example_renders_a_short_clip_and_writes_its_dated_report(
    sample_media, short_group_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = tmp_path / "clip.mp4"
    subprocess.run(
        [ffmpeg_executable(), "-nostdin", "-loglevel", "error", "-i", str(short_group_clip),
         "-frames:v", "12", "-vf", "scale=320:180", "-an", "-c:v", "libx264", str(clip)],
        check=True,
    )  # fmt: skip
    (tmp_path / "examples").mkdir()
    folder = examples_folder(tmp_path / "examples", sample_media, clip)
    run_options = ["--no-progress", "--work-store", str(tmp_path / "work")]
    assert nightly.main([str(folder / "nightly.yaml"), *run_options]) == 0
    location = capsys.readouterr().out.split("run report: ")[1].strip()
    report = json.loads(Path(location).read_text(encoding="utf-8"))
    assert Path(location).parent == folder / "out" / "nightly" / "reports"
    assert [render["status"] for render in report["job"]["renders"]] == [RENDERED]
    output = folder / "out" / "nightly" / "group_target__source_tom_hanks.mp4"
    assert probe_media(output).frame_count == 12
