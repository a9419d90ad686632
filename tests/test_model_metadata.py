"""Lean model memory (issue 16, part 3): what the pipeline needs of a model besides running it
(signatures, InSwapper's emap) is read when the model is prepared and stored beside it, pinned
like the model; a large model's weights go to a file beside the graph, which ONNX Runtime maps
instead of copying. Rendering never parses the model file: the emap comes from the metadata."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from facefusion_ray.errors import ModelError
from facefusion_ray.inference.sessions import ModelSession
from facefusion_ray.processors.emap import read_emap
from facefusion_ray.zoo import preparation
from facefusion_ray.zoo.facefusion_import import import_facefusion_folder
from facefusion_ray.zoo.lockfile import LOCK_FILE_NAME
from facefusion_ray.zoo.manifest import get_model_spec
from facefusion_ray.zoo.model_metadata import metadata_path, read_metadata
from facefusion_ray.zoo.model_store import ModelStore
from tests.standin_models import build_standin, write_facefusion_hash


def test_a_prepared_swapper_keeps_its_emap_and_weights_beside_the_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stand-in is small: lower the size from which weights go beside the graph.
    monkeypatch.setattr(preparation, "EXTERNAL_WEIGHTS_MIN_BYTES", 0)
    spec = get_model_spec("inswapper_128")
    standin = build_standin(spec, tmp_path / "facefusion" / "inswapper_128.onnx")
    write_facefusion_hash(standin)
    emap = numpy_helper.to_array(onnx.load(str(standin)).graph.initializer[-1])
    store = ModelStore(str(tmp_path / "store"), node_cache=tmp_path / "node")
    import_facefusion_folder(store, standin.parent)

    path = store.local_path("inswapper_128")
    beside = {file.name for file in path.parent.iterdir() if file.name.startswith(path.name)}
    weights, metadata = path.name + ".data", path.name + ".meta.npz"
    assert {path.name, weights, metadata} <= beside
    assert path.stat().st_size < 20_000 < path.with_name(weights).stat().st_size
    pins = json.loads((tmp_path / "store" / LOCK_FILE_NAME).read_text())["inswapper_128"]
    assert {path.name, weights, metadata} <= set(pins["prepared"])
    checks = {check.label: check.ok for check in store.verify("inswapper_128").checks}
    assert checks == dict.fromkeys(
        ("source", "prepared", "prepared metadata", "prepared weights"), True
    )

    session = ModelSession(path, "inswapper_128")
    target = np.zeros((1, 3, 128, 128), np.float32)
    output = session.run({"target": target, "source": np.ones((1, 512), np.float32)})[0]
    assert output.shape == (1, 3, 128, 128)
    assert [tensor.name for tensor in read_metadata(path).inputs] == ["target", "source"]
    # The emap comes from the metadata: the graph file itself is never parsed for it.
    path.write_bytes(b"not a model any more")
    assert np.array_equal(read_emap(path), emap)


def test_tampered_metadata_is_refused_in_the_store_and_copied_again_on_a_node(
    tmp_path: Path,
) -> None:
    store = ModelStore(str(tmp_path / "store"), node_cache=tmp_path / "node")
    meta = metadata_path(store.local_path("yunet"))
    pristine = meta.read_bytes()
    tampered = pristine[:-8] + b"\x01" * 8
    meta.write_bytes(tampered)
    store.local_path("yunet")
    assert meta.read_bytes() == pristine  # the node copy failed its pin and was copied again

    (tmp_path / "store" / "prepared" / "yunet" / meta.name).write_bytes(tampered)
    other_node = ModelStore(str(tmp_path / "store"), node_cache=tmp_path / "other-node")
    with pytest.raises(ModelError, match=r"meta\.npz has sha256 .*it was not loaded"):
        other_node.local_path("yunet")
    failed = [check.label for check in other_node.verify("yunet").checks if not check.ok]
    assert failed == ["prepared metadata"]
    repaired = metadata_path(other_node.local_path("yunet", repair=True))
    assert repaired.read_bytes() == pristine and other_node.verify("yunet").ok


def test_peak_memory_is_the_process_own_not_its_parents() -> None:
    # A parent holding 400 MB forks and execs a small child: getrusage would give the child
    # the parent's 400 MB; the report's figure must not.
    child = (
        "from facefusion_ray.pipeline.chunk_loop import peak_memory_bytes; "
        "print(peak_memory_bytes())"
    )
    parent = (
        "import subprocess, sys; held = b'x' * 400_000_000; "
        f"print(subprocess.run([sys.executable, '-c', {child!r}], capture_output=True, "
        "text=True, check=True).stdout)"
    )
    printed = subprocess.run(
        [sys.executable, "-c", parent], capture_output=True, text=True, check=True
    ).stdout
    assert int(printed.strip()) < 300_000_000
