"""Published outputs (issue 18, case 5): "up to date" means the same bytes, not the same size.
An output edited in place without changing its size is rendered again, local or on S3."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from facefusion_ray.engine.driver import run_swap
from facefusion_ray.settings import SwapSettings
from facefusion_ray.storage import open_filesystem, read_bytes
from tests.media_factory import make_clip

if TYPE_CHECKING:
    from tests.s3_server import S3Server

pytest_plugins = ["tests.s3_server"]


def same_size_edit(payload: bytes) -> bytes:
    edited = bytearray(payload)
    edited[len(payload) // 2] ^= 0x01
    return bytes(edited)


@pytest.mark.usefixtures("local_ray")
@pytest.mark.parametrize("where", ["local", "s3"])
def test_an_output_edited_in_place_is_rendered_again(
    sample_media,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    target = make_clip(tmp_path / "clip.mp4", frames=12, audio=False)
    storage_options: dict[str, str] = {}
    output = str(tmp_path / "out" / "swapped.mp4")
    if where == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        monkeypatch.setenv("AWS_DEFAULT_REGION", server.region)
        storage_options = server.storage_options()
        output = f"s3://{server.create_bucket('outputs')}/out/swapped.mp4"
    filesystem, path = open_filesystem(output, storage_options)

    def render():
        return run_swap(
            [sample_media.source_tom_hanks],
            target,
            output,
            SwapSettings(chunk_frames=6),
            show_progress=False,
            work_store=str(tmp_path / "work"),
            storage_options=tuple(storage_options.items()),
        )

    assert not render().up_to_date
    published = read_bytes(filesystem, path)
    assert render().up_to_date

    edited = same_size_edit(published)
    filesystem.pipe_file(path, edited)
    assert len(read_bytes(filesystem, path)) == len(published)
    with caplog.at_level(logging.WARNING, logger="facefusion_ray"):
        again = render()
    assert not again.up_to_date
    assert "content changed since it was published (same size)" in caplog.text
    assert read_bytes(filesystem, path) != edited
    assert render().up_to_date
