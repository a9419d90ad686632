"""The asset fetcher: URL and wheel sources, pinning, caching, locking; the real pinned assets."""

from __future__ import annotations

import base64
import hashlib
import http.server
import logging
import os
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

from facefusion_ray.assets import Asset, UrlSource, WheelMemberSource, asset_path, fetch_asset
from facefusion_ray.assets.samples import ASTRONAUT_PHOTO, T1_GROUP_PHOTO, TOM_HANKS_PHOTO
from facefusion_ray.errors import AssetError
from facefusion_ray.paths import CACHE_ENV
from facefusion_ray.zoo import get_model_spec

REPO_ROOT = Path(__file__).resolve().parents[1]
FETCH_LOGGER = "facefusion_ray.assets.fetch"


def sha256_hex(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    return cache


@pytest.fixture
def local_wheelhouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip sees only this folder: the fetcher must pass the environment through to pip."""
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheelhouse))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    return wheelhouse


def build_wheel(folder: Path, name: str, version: str, members: dict[str, bytes]) -> Path:
    """A minimal valid pure-Python wheel holding `members`."""
    distribution = name.replace("-", "_")
    dist_info = f"{distribution}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    files = {
        **members,
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record_lines = []
    for path, payload in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(payload).digest()).rstrip(b"=").decode()
        record_lines.append(f"{path},sha256={digest},{len(payload)}")
    record_lines.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record_lines) + "\n").encode()
    wheel = folder / f"{distribution}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, payload in files.items():
            archive.writestr(path, payload)
    return wheel


def test_fetches_file_url_into_content_addressed_cache(private_cache: Path, tmp_path: Path) -> None:
    payload = b"pinned bytes\n" * 1000
    source_file = tmp_path / "payload.bin"
    source_file.write_bytes(payload)
    asset = Asset(
        "test payload", "payload.bin", sha256_hex(payload), (UrlSource(source_file.as_uri()),)
    )

    path = fetch_asset(asset)

    assert path == private_cache / "assets" / asset.sha256 / "payload.bin"
    assert path.read_bytes() == payload
    source_file.unlink()  # a second use is served from the cache
    assert fetch_asset(asset).read_bytes() == payload


def test_members_of_one_wheel_download_it_once(
    private_cache: Path, local_wheelhouse: Path, caplog: pytest.LogCaptureFixture
) -> None:
    members = {"ffr_testdata/a.bin": b"first member", "ffr_testdata/b.bin": b"second member"}
    build_wheel(local_wheelhouse, "ffr-testdata", "0.1", members)
    assets = [
        Asset(
            f"member {name}",
            Path(name).name,
            sha256_hex(payload),
            (WheelMemberSource("ffr-testdata==0.1", name),),
        )
        for name, payload in members.items()
    ]
    caplog.set_level(logging.INFO, logger=FETCH_LOGGER)

    paths = [fetch_asset(asset) for asset in assets]

    assert [path.read_bytes() for path in paths] == list(members.values())
    pip_runs = [r for r in caplog.records if r.getMessage().startswith("downloading wheel")]
    assert len(pip_runs) == 1
    assert list((private_cache / "wheels").glob("*/*.whl"))


def test_hash_mismatch_names_asset_and_source(private_cache: Path, tmp_path: Path) -> None:
    source_file = tmp_path / "tampered.bin"
    source_file.write_bytes(b"not what was pinned")
    expected = sha256_hex(b"what was pinned")
    asset = Asset("pinned thing", "thing.bin", expected, (UrlSource(source_file.as_uri()),))

    with pytest.raises(AssetError) as caught:
        fetch_asset(asset)

    message = str(caught.value)
    assert "\n" not in message
    assert message == (
        f"sha256 mismatch for pinned thing from {source_file.as_uri()}: "
        f"expected {expected}, got {sha256_hex(b'not what was pinned')}"
    )
    assert not asset_path(asset).exists()


def test_unreachable_sources_are_listed(
    private_cache: Path, local_wheelhouse: Path, tmp_path: Path
) -> None:
    missing_url = (tmp_path / "nowhere.bin").as_uri()
    asset = Asset(
        "unreachable thing",
        "thing.bin",
        sha256_hex(b"anything"),
        (UrlSource(missing_url), WheelMemberSource("ffr-not-published==9.9", "x/thing.bin")),
    )

    with pytest.raises(AssetError) as caught:
        fetch_asset(asset)

    message = str(caught.value)
    assert message.startswith("no source reachable for unreachable thing; tried: ")
    assert missing_url in message
    assert "ffr-not-published==9.9" in message
    assert "\n" not in message


def test_corrupted_cached_file_is_fetched_again(private_cache: Path, tmp_path: Path) -> None:
    payload = b"original content"
    source_file = tmp_path / "original.bin"
    source_file.write_bytes(payload)
    asset = Asset("fragile", "fragile.bin", sha256_hex(payload), (UrlSource(source_file.as_uri()),))
    cached = fetch_asset(asset)

    cached.write_bytes(b"bit rot")

    assert fetch_asset(asset) == cached
    assert cached.read_bytes() == payload


class _SlowCountingServer(http.server.ThreadingHTTPServer):
    payload = b""
    requests_served = 0


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    server: _SlowCountingServer

    def do_GET(self) -> None:
        self.server.requests_served += 1
        time.sleep(1.0)  # long enough for the second process to reach the lock
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.payload)))
        self.end_headers()
        self.wfile.write(self.server.payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def slow_server() -> Iterator[_SlowCountingServer]:
    server = _SlowCountingServer(("127.0.0.1", 0), _SlowHandler)
    server.payload = os.urandom(256 * 1024)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


FETCH_SCRIPT = """
import sys
from facefusion_ray.assets import Asset, UrlSource, fetch_asset
asset = Asset("shared", "shared.bin", sys.argv[2], (UrlSource(sys.argv[1]),))
print(fetch_asset(asset))
"""


def test_concurrent_processes_download_once(
    private_cache: Path, slow_server: _SlowCountingServer
) -> None:
    url = f"http://127.0.0.1:{slow_server.server_address[1]}/shared.bin"
    expected = sha256_hex(slow_server.payload)
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", FETCH_SCRIPT, url, expected],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    results = [process.communicate(timeout=60) for process in processes]

    assert [process.returncode for process in processes] == [0, 0], results
    printed = {stdout.strip() for stdout, _ in results}
    assert printed == {str(private_cache / "assets" / expected / "shared.bin")}
    assert slow_server.requests_served == 1


@pytest.mark.parametrize(
    "asset",
    [T1_GROUP_PHOTO, TOM_HANKS_PHOTO, ASTRONAUT_PHOTO],
    ids=lambda asset: asset.filename,
)
def test_real_sample_photos(asset: Asset) -> None:
    image = cv2.imread(str(fetch_asset(asset)))

    assert image is not None
    assert image.ndim == 3
    assert min(image.shape[:2]) >= 100


def test_t1_is_the_group_photo() -> None:
    image = cv2.imread(str(fetch_asset(T1_GROUP_PHOTO)))

    assert image.shape == (886, 1280, 3)


@pytest.mark.parametrize("model_id", ["yunet", "sface"])
def test_real_model_sources(model_id: str) -> None:
    spec = get_model_spec(model_id)

    assert spec.source.sha256 is not None
    path = fetch_asset(spec.source.asset(model_id, spec.source.sha256))

    assert path.name == spec.source.file
    assert path.read_bytes()[:2] == b"\x08\x06"  # ONNX protobuf: field 1 (ir_version) = 6
