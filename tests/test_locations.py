"""Render locations on local folders and on a real S3 server (SeaweedFS): staging inputs into the
node cache, publishing outputs, existence checks, removal and glob expansion."""

from __future__ import annotations

import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from facefusion_ray.errors import MediaError
from facefusion_ray.paths import CACHE_ENV
from facefusion_ray.storage import open_filesystem, put_bytes_atomic, read_bytes
from facefusion_ray.storage.locations import (
    STAGED_FOLDER_NAME,
    expand_glob,
    is_remote,
    output_exists,
    publish_output,
    stage_input,
)

if TYPE_CHECKING:
    from tests.s3_server import S3Server

pytest_plugins = ["tests.s3_server"]


@dataclass(frozen=True)
class Bucket:
    url: str  # s3://bucket
    storage_options: dict[str, str]
    secret: str

    def put(self, key: str, payload: bytes) -> str:
        location = f"{self.url}/{key}"
        filesystem, path = open_filesystem(location, self.storage_options)
        put_bytes_atomic(filesystem, payload, path)
        return location

    def get(self, location: str) -> bytes:
        filesystem, path = open_filesystem(location, self.storage_options)
        return read_bytes(filesystem, path)


@pytest.fixture
def node_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "node-cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    return cache


@pytest.fixture
def bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    # Credentials travel only as storage options, as they would from a batch spec.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_server.region)
    return Bucket(
        url=f"s3://{s3_server.create_bucket('locations')}",
        storage_options=s3_server.storage_options(),
        secret=s3_server.secret_key,
    )


def staged_files(node_cache: Path) -> list[Path]:
    """Staged content and leftovers, without the lock files."""
    folder = node_cache / STAGED_FOLDER_NAME
    return sorted(path for path in folder.rglob("*") if path.is_file() and path.suffix != ".lock")


def test_is_remote_tells_object_store_urls_from_local_paths() -> None:
    assert is_remote("s3://bucket/in/a.mp4")
    assert is_remote("S3A://bucket/in/a.mp4")
    assert not is_remote("/videos/a.mp4")
    assert not is_remote("videos/a.mp4")
    assert not is_remote("file:///videos/a.mp4")


def test_local_input_is_used_in_place(tmp_path: Path, node_cache: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"frames")
    assert stage_input(str(video)) == video
    assert stage_input(video.as_uri()) == video
    assert not (node_cache / STAGED_FOLDER_NAME).exists()


def test_missing_local_input_is_a_media_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "clip.mp4"
    with pytest.raises(MediaError, match=r"no such file: .*nowhere/clip\.mp4"):
        stage_input(str(missing))


def test_remote_input_is_staged_once_and_restaged_when_it_changes(
    bucket: Bucket, node_cache: Path
) -> None:
    location = bucket.put("in/take 1.mov", b"first version")

    staged = stage_input(location, bucket.storage_options)
    assert staged.name == "take 1.mov"
    assert staged.is_relative_to(node_cache / STAGED_FOLDER_NAME)
    assert staged.read_bytes() == b"first version"
    inode = staged.stat().st_ino

    again = stage_input(location, bucket.storage_options)
    assert again == staged
    assert again.stat().st_ino == inode  # reused, not downloaded again

    bucket.put("in/take 1.mov", b"second, longer version")
    changed = stage_input(location, bucket.storage_options)
    assert changed != staged
    assert changed.read_bytes() == b"second, longer version"
    assert staged.read_bytes() == b"first version"


def test_concurrent_callers_share_one_download(bucket: Bucket, node_cache: Path) -> None:
    location = bucket.put("in/face.jpg", b"x" * 3_000_000)
    start = threading.Barrier(4)

    def stage() -> tuple[Path, int]:
        start.wait()
        staged = stage_input(location, bucket.storage_options)
        return staged, staged.stat().st_ino

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: stage(), range(4)))

    assert len(set(results)) == 1  # one path, one inode: nobody replaced another's download
    staged = results[0][0]
    assert staged.read_bytes() == b"x" * 3_000_000
    assert staged_files(node_cache) == [staged]  # no partial files left behind


def test_missing_remote_input_is_a_media_error_without_credentials(
    bucket: Bucket, node_cache: Path
) -> None:
    location = f"{bucket.url}/in/absent.mp4"
    with pytest.raises(MediaError) as raised:
        stage_input(location, bucket.storage_options)
    message = str(raised.value)
    assert location in message
    assert bucket.secret not in message
    assert staged_files(node_cache) == []


def test_remote_folder_is_not_an_input(bucket: Bucket, node_cache: Path) -> None:
    bucket.put("in/nested/a.mp4", b"a")
    with pytest.raises(MediaError, match="not a file"):
        stage_input(f"{bucket.url}/in/nested", bucket.storage_options)


def test_local_output_is_moved_into_place(tmp_path: Path) -> None:
    finished = tmp_path / "work" / "render.mp4"
    finished.parent.mkdir()
    finished.write_bytes(b"new render")
    destination = tmp_path / "out" / "deep" / "final.mp4"
    assert not output_exists(str(destination))

    publish_output(finished, str(destination))

    assert destination.read_bytes() == b"new render"
    assert not finished.exists()
    assert output_exists(str(destination))
    replacement = tmp_path / "work" / "again.mp4"
    replacement.write_bytes(b"replacement")
    publish_output(replacement, str(destination))
    assert destination.read_bytes() == b"replacement"
    assert [path.name for path in destination.parent.iterdir()] == ["final.mp4"]


def test_local_output_is_copied_when_it_is_on_another_disk(tmp_path: Path) -> None:
    other_disk = Path("/dev/shm")
    if not other_disk.is_dir() or other_disk.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the temporary folder")
    with tempfile.TemporaryDirectory(dir=other_disk) as work:
        finished = Path(work) / "render.mp4"
        finished.write_bytes(b"render from memory")
        destination = tmp_path / "out" / "final.mp4"
        publish_output(finished, str(destination))
        assert destination.read_bytes() == b"render from memory"
        assert not finished.exists()
        assert [path.name for path in destination.parent.iterdir()] == ["final.mp4"]


def test_remote_output_is_published_and_checked(tmp_path: Path, bucket: Bucket) -> None:
    finished = tmp_path / "render.mp4"
    finished.write_bytes(b"remote render")
    location = f"{bucket.url}/out/a__b.mp4"
    options = bucket.storage_options
    assert not output_exists(location, options)

    publish_output(finished, location, options)

    assert bucket.get(location) == b"remote render"
    assert not finished.exists()
    assert output_exists(location, options)


def test_local_glob_expansion(tmp_path: Path) -> None:
    for relative in ("videos/b.mp4", "videos/a.mp4", "videos/c.mov", "videos/old/d.mp4"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"v")
    (tmp_path / "videos" / "folder.mp4").mkdir()
    videos = tmp_path / "videos"

    assert expand_glob(f"{videos}/*.mp4") == [f"{videos}/a.mp4", f"{videos}/b.mp4"]
    assert expand_glob(f"{videos}/**/*.mp4") == [
        f"{videos}/a.mp4",
        f"{videos}/b.mp4",
        f"{videos}/old/d.mp4",
    ]
    assert expand_glob(f"{videos}/c.mov") == [f"{videos}/c.mov"]
    assert expand_glob(f"{videos}/missing.mov") == []
    assert expand_glob(f"{videos}/folder.mp4") == []
    assert expand_glob(f"{tmp_path}/nowhere/*.mp4") == []


def test_remote_glob_expansion(bucket: Bucket) -> None:
    for key in ("in/b.mov", "in/a.mov", "in/a.mp4", "in/deeper/c.mov", "other/d.mov"):
        bucket.put(key, b"v")
    options = bucket.storage_options

    assert expand_glob(f"{bucket.url}/in/*.mov", options) == [
        f"{bucket.url}/in/a.mov",
        f"{bucket.url}/in/b.mov",
    ]
    assert expand_glob(f"{bucket.url}/in/**/*.mov", options) == [
        f"{bucket.url}/in/a.mov",
        f"{bucket.url}/in/b.mov",
        f"{bucket.url}/in/deeper/c.mov",
    ]
    assert expand_glob(f"{bucket.url}/in/a.mp4", options) == [f"{bucket.url}/in/a.mp4"]
    assert expand_glob(f"{bucket.url}/in/missing.mp4", options) == []
    assert expand_glob(f"{bucket.url}/in/deeper", options) == []
    assert expand_glob(f"{bucket.url}/nowhere/*.mov", options) == []


def test_prune_staged_keeps_the_most_recently_used_copies(
    node_cache: Path, bucket: Bucket, capsys: pytest.CaptureFixture[str]
) -> None:
    from facefusion_ray.cli.main import main
    from facefusion_ray.storage.staged_inputs import staged_copies

    first = stage_input(bucket.put("in/first.mp4", b"1" * 1000), bucket.storage_options)
    second = stage_input(bucket.put("in/second.mp4", b"2" * 1000), bucket.storage_options)
    # Both staged long ago, the second more recently; then the first is used again.
    os.utime(first.parent, (1_000_000, 1_000_000))
    os.utime(second.parent, (2_000_000, 2_000_000))
    file_time = first.stat().st_mtime_ns
    again = stage_input(f"{bucket.url}/in/first.mp4", bucket.storage_options)
    assert again == first and first.stat().st_mtime_ns == file_time  # fingerprints stay valid
    assert [copy.folder for copy in staged_copies()] == [second.parent, first.parent]

    assert main(["cache", "prune-staged", "--max-bytes", "1500"]) == 0
    assert "pruned 1 staged copies, 1000 bytes" in capsys.readouterr().out
    assert first.exists() and not second.exists()
    # A pruned copy is simply staged again when it is needed.
    assert stage_input(f"{bucket.url}/in/second.mp4", bucket.storage_options).read_bytes() == (
        b"2" * 1000
    )
    assert main(["cache", "prune-staged", "--max-bytes", "0"]) == 0
    assert staged_files(node_cache) == []


def test_one_s3_client_per_process_options_and_aws_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client per call cost a catalog driver ~20 MiB and seconds a render; a shared one must
    still see a changed AWS environment (another profile, rotated keys)."""
    options = {"client_kwargs.endpoint_url": "http://127.0.0.1:9", "key": "k1", "secret": "s1"}
    first, _ = open_filesystem("s3://bucket/a", options)
    again, _ = open_filesystem("s3://bucket/b", options)
    other_keys, _ = open_filesystem("s3://bucket/a", {**options, "secret": "s2"})
    monkeypatch.setenv("AWS_PROFILE", "another-profile")
    other_profile, _ = open_filesystem("s3://bucket/a", options)
    assert again is first
    assert other_keys is not first and other_profile is not first
