"""Starting a local Ray is not derailed by what an earlier, crashed Ray left behind."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from facefusion_ray.engine.ray_runtime import cluster_to_join

START_LOCAL_RAY = """
import ray
from facefusion_ray.engine.ray_runtime import ensure_ray

assert ensure_ray(None, num_cpus=1)
print("nodes", len(ray.nodes()))
ray.shutdown()
"""


def test_a_stale_current_cluster_file_does_not_stop_a_local_start() -> None:
    # Ray's unix sockets live under its temp folder, whose path must stay short.
    temp_root = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    try:
        ray_folder = temp_root / "ray"
        ray_folder.mkdir()
        # What a head that died without cleaning up leaves: the address of a dead GCS.
        (ray_folder / "ray_current_cluster").write_text("192.0.2.1:6379")
        environment = {**os.environ, "RAY_TMPDIR": str(temp_root), "RAY_ADDRESS": ""}
        completed = subprocess.run(
            [sys.executable, "-c", START_LOCAL_RAY],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr[-2000:]
        assert "nodes 1" in completed.stdout
    finally:
        shutil.rmtree(temp_root, ignore_errors=True)


def test_the_cluster_to_join_comes_from_the_option_then_ray_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    # `ray job submit` sets RAY_ADDRESS: a CLI run inside the job joins that cluster.
    assert cluster_to_join(None) == "10.0.0.5:6379"
    assert cluster_to_join("ray://head:10001") == "ray://head:10001"
    monkeypatch.setenv("RAY_ADDRESS", "")
    assert cluster_to_join(None) is None
    monkeypatch.delenv("RAY_ADDRESS")
    assert cluster_to_join(None) is None
