"""A small remote target staged whole is downloaded once per job, by the node that probes it
for the driver and then renders every chunk of its renders: the scale benchmark
(`python -m benchmarks.scale`) on a simulated cluster of two nodes, each with a cache of its
own, the catalog in SeaweedFS behind the byte-counting proxy. In a process of its own: taking
its cluster down resets this process's Ray state."""

import json
import subprocess
import sys
from pathlib import Path


def test_each_small_clip_is_read_once(tmp_path: Path) -> None:
    # Three clips x three sources, one chunk a render, on two nodes: without locality the
    # renders of a clip go to whichever actor is free, and both nodes download most clips; a
    # driver that probed the clips itself would read each twice.
    output = tmp_path / "scale.json"
    command = [
        sys.executable, "-m", "benchmarks.scale", "--clips", "3", "--sources", "3",
        "--frames", "12", "--chunk-frames", "16", "--nodes", "2", "--gpu-nodes", "0",
        "--clip-size", "256", "--lossless",
        "--output", str(output),
    ]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    (figures,) = json.loads(output.read_text())["runs"]
    assert figures["outputs_published"] == 9
    store = figures["object_store"]
    # One node stages each clip whole; the driver reads its index and audio for the final mux
    # (a few percent of these 0.4 MB clips).
    assert 1.0 < store["clips_read_over_clip_bytes"] <= 1.1
    assert store["sources_read_over_source_bytes"] == 1.0
    assert figures["chunks_rendered_twice"] == 0
