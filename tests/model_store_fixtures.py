"""A model store under test, in a local folder and in S3 (SeaweedFS): `store_under_test`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from facefusion_ray.storage import (
    join,
    list_files,
    open_filesystem,
    put_bytes_atomic,
    read_bytes,
    remove,
)
from facefusion_ray.zoo.manifest import Manifest
from facefusion_ray.zoo.model_store import ModelStore

if TYPE_CHECKING:
    from tests.s3_server import S3Server

STORE_KINDS = ["local", "s3"]


@dataclass(frozen=True)
class StoreUnderTest:
    url: str
    environment: dict[str, str]  # what a subprocess needs to reach the store

    def open(self, node_cache: Path, manifest: Manifest | None = None) -> ModelStore:
        return ModelStore(self.url, node_cache=node_cache, manifest=manifest)

    def files(self) -> list[str]:
        """Every object of the store, relative to its root."""
        filesystem, root = open_filesystem(self.url)
        return [path[len(root) + 1 :] for path in list_files(filesystem, root)]

    def read(self, relative: str) -> bytes:
        filesystem, root = open_filesystem(self.url)
        return read_bytes(filesystem, join(root, relative))

    def write(self, relative: str, payload: bytes) -> None:
        filesystem, root = open_filesystem(self.url)
        put_bytes_atomic(filesystem, payload, join(root, relative))

    def delete(self, relative: str) -> None:
        filesystem, root = open_filesystem(self.url)
        remove(filesystem, join(root, relative))


@pytest.fixture(params=STORE_KINDS)
def store_under_test(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> StoreUnderTest:
    if request.param == "local":
        return StoreUnderTest(str(tmp_path / "store"), {})
    server: S3Server = request.getfixturevalue("s3_server")
    for name, value in server.environment().items():
        monkeypatch.setenv(name, value)
    return StoreUnderTest(f"s3://{server.create_bucket('models')}/zoo", server.environment())
