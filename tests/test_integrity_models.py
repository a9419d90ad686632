"""Prepared models (issue 18, case 4): their SHA-256 is pinned in models.lock.json when they are
built; the store's copy and every node's copy are checked against that pin, not against the
`.sha256` sidecar beside them, so a model replaced together with its sidecar is refused, and a
node copy taken from a tampered store is replaced once the store is repaired."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from facefusion_ray.errors import ModelError
from facefusion_ray.zoo.lockfile import LOCK_FILE_NAME
from facefusion_ray.zoo.preparation import SIDECAR_SUFFIX, sidecar_path
from tests.test_model_store import prepared_name

if TYPE_CHECKING:
    from tests.model_store_fixtures import StoreUnderTest

pytest_plugins = ["tests.s3_server", "tests.model_store_fixtures"]


def impostor(pristine: bytes) -> bytes:
    return pristine[:-16] + b"\x01" * 16


def test_every_prepared_file_is_pinned_in_the_lock_file(
    store_under_test: StoreUnderTest, tmp_path: Path
) -> None:
    store_under_test.open(tmp_path / "node").pull("yunet")
    lock = json.loads(store_under_test.read(LOCK_FILE_NAME))
    pins = lock["yunet"]["prepared"]
    assert prepared_name("yunet") in pins
    for name, sha256 in pins.items():
        assert hashlib.sha256(store_under_test.read(f"prepared/yunet/{name}")).hexdigest() == sha256


def test_a_model_replaced_with_its_sidecar_is_refused_then_repaired(
    store_under_test: StoreUnderTest, tmp_path: Path
) -> None:
    store_under_test.open(tmp_path / "first-node").pull("yunet")
    key = f"prepared/yunet/{prepared_name('yunet')}"
    pristine = store_under_test.read(key)
    fake = impostor(pristine)
    fake_sha256 = hashlib.sha256(fake).hexdigest()
    store_under_test.write(key, fake)
    store_under_test.write(
        key + SIDECAR_SUFFIX, f"{fake_sha256}  {prepared_name('yunet')}\n".encode()
    )
    node = store_under_test.open(tmp_path / "second-node")

    with pytest.raises(ModelError, match=fake_sha256):
        node.local_path("yunet")
    assert [check.label for check in node.verify("yunet").checks if not check.ok] == ["prepared"]

    assert node.local_path("yunet", repair=True).read_bytes() == pristine
    assert store_under_test.read(key) == pristine and node.verify("yunet").ok


def test_a_node_copy_is_checked_against_the_lock_not_its_sidecar(
    store_under_test: StoreUnderTest, tmp_path: Path
) -> None:
    node = store_under_test.open(tmp_path / "node")
    path = node.local_path("yunet")
    pristine = path.read_bytes()
    # A node copy replaced together with its node sidecar (as the issue found after a repair).
    fake = impostor(pristine)
    path.write_bytes(fake)
    sidecar_path(path).write_text(f"{hashlib.sha256(fake).hexdigest()}  {path.name}\n")

    assert node.local_path("yunet") == path
    assert path.read_bytes() == pristine
