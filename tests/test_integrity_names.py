"""Hostile names and outputs that are inputs (issue 18, cases 2 and 3): `swap` and `ab` refuse
to overwrite their input, also through links, and no batch output pattern leaves its folder,
whatever the names of the targets and sources, for local and S3 outputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from facefusion_ray.cli.batch_spec import load_batch_spec
from facefusion_ray.cli.main import main
from facefusion_ray.errors import SettingsError
from facefusion_ray.file_names import safe_file_name
from tests.test_batch_spec import make_files, minimal_spec, write_spec


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"the only copy of the footage")
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink", "dotted"])
def test_swap_refuses_to_overwrite_its_target(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], link: str
) -> None:
    output = {"same": clip, "dotted": tmp_path / "sub" / ".." / "clip.mp4"}.get(link)
    if link == "symlink":
        output = tmp_path / "alias.mp4"
        output.symlink_to(clip)
    elif link == "hardlink":
        output = tmp_path / "hard.mp4"
        os.link(clip, output)
    (tmp_path / "sub").mkdir()
    code, error = run_cli(
        capsys, "swap", "--source", str(clip), "--target", str(clip), "--output", str(output)
    )
    assert code == 1
    assert error.count("\n") == 1 and "would be overwritten" in error
    assert clip.read_bytes() == b"the only copy of the footage"


def test_swap_refuses_to_overwrite_its_source(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    face = tmp_path / "face.png"
    face.write_bytes(b"face")
    code, error = run_cli(
        capsys, "swap", "--source", str(face), "--target", str(clip), "--output", str(face)
    )
    assert code == 1 and "would be overwritten" in error and face.read_bytes() == b"face"


def test_ab_refuses_an_output_that_is_its_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A/B writes <dir>/<target stem>__<source stem>.mp4: here a link to the target.
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"footage")
    face = tmp_path / "face.png"
    face.write_bytes(b"face")
    out = tmp_path / "out"
    out.mkdir()
    (out / "clip__face.mp4").symlink_to(target)
    code, error = run_cli(
        capsys, "ab", "--target", str(target), "--source", str(face), "--output-dir", str(out)
    )
    assert code == 1 and "would be overwritten" in error and target.read_bytes() == b"footage"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("..", "__"),
        (".", "_"),
        ("...", "___"),
        ("", "_"),
        ("a/b", "a_b"),
        ("a\\b", "a_b"),
        ("~root", "_root"),
        ("line\nbreak", "line_break"),
        ("..hidden", "..hidden"),
        ("clip.v2", "clip.v2"),
    ],
)
def test_safe_file_names(name: str, expected: str) -> None:
    assert safe_file_name(name) == expected


@pytest.mark.parametrize("output_root", ["o2", "s3://bucket/o2"])
def test_hostile_target_names_stay_in_the_output_folder(tmp_path: Path, output_root: str) -> None:
    targets = ["videos/...mp4", "videos/~x.mp4", "videos/..mp4"]
    make_files(tmp_path, *targets, "faces/anna.jpg")
    pattern = f"{output_root}/{{target_stem}}/{{source_stem}}.mp4"
    spec = load_batch_spec(write_spec(tmp_path, minimal_spec(output=pattern, targets=targets)))
    outputs = [render.output for render in spec.renders]
    assert len(outputs) == 3
    for output in outputs:
        if output_root.startswith("s3://"):
            assert output.startswith("s3://bucket/o2/") and "/../" not in output
        else:
            assert Path(output).resolve().is_relative_to((tmp_path / "o2").resolve()), output
    assert any("/__/" in output for output in outputs)


@pytest.mark.parametrize(
    "pattern",
    ["o2/{target_name:.2}/x.mp4", "o2/{index:/>3}x.mp4", "{target_stem:~>9}.mp4"],
)
def test_format_specs_cannot_move_an_output_out_of_its_folder(tmp_path: Path, pattern: str) -> None:
    make_files(tmp_path, "videos/..clip.mp4", "faces/anna.jpg")
    spec = minimal_spec(output=pattern, targets=["videos/..clip.mp4"])
    with pytest.raises(SettingsError, match="outside its folder"):
        load_batch_spec(write_spec(tmp_path, spec))


def test_batch_refuses_an_output_that_links_to_a_target(tmp_path: Path) -> None:
    make_files(tmp_path, "videos/a.mp4", "faces/anna.jpg")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.mp4").symlink_to(tmp_path / "videos" / "a.mp4")
    with pytest.raises(SettingsError, match="would overwrite its input"):
        load_batch_spec(write_spec(tmp_path, minimal_spec(output="out/{target_name}")))
