"""A small remote target staged whole is downloaded by one node per job, however many of its
renders there are: the scale benchmark (`python -m benchmarks.scale`) on a simulated cluster of
two nodes, each with a cache of its own, the catalog in SeaweedFS behind the byte-counting
proxy. In a process of its own: taking its cluster down resets this process's Ray state."""

import json
import subprocess
import sys
from pathlib import Path


def test_each_small_clip_is_read_by_the_driver_and_one_node(tmp_path: Path) -> None:
    # Three clips x three sources, one chunk a render, on two nodes: without locality the
    # renders of a clip go to whichever actor is free, and both nodes download most clips.
    output = tmp_path / "scale.json"
    command = [
        sys.executable, "-m", "benchmarks.scale", "--clips", "3", "--sources", "3",
        "--frames", "6", "--chunk-frames", "8", "--nodes", "2", "--gpu-nodes", "0",
        "--output", str(output),
    ]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    (figures,) = json.loads(output.read_text())["runs"]
    assert figures["outputs_published"] == 9
    store = figures["object_store"]
    # The driver stages each clip to probe it (and takes the audio from that copy); then
    # exactly one node stages it for every chunk of its three renders.
    assert store["clips_read_over_clip_bytes"] == 2.0
    assert store["sources_read_over_source_bytes"] == 1.0
    assert figures["chunks_rendered_twice"] == 0
