"""A small remote target staged whole is downloaded by one node per job, however many of its
renders there are: a catalog job on a simulated cluster of two nodes (each with a cache of its
own), the catalog in SeaweedFS behind the byte-counting proxy (benchmarks/scale_run)."""

from pathlib import Path

from benchmarks.scale_catalog import CatalogShape
from benchmarks.scale_cluster import ClusterShape
from benchmarks.scale_run import ScaleRun, run_scale


def test_each_small_clip_is_read_by_the_driver_and_one_node(tmp_path: Path) -> None:
    # Two clips x two sources, one chunk a render: without locality the two renders of a clip
    # go to the two (idle) actors, and both nodes download it.
    run = ScaleRun(
        CatalogShape(clips=3, sources=3, frames=6),
        ClusterShape(nodes=2, gpu_nodes=0),
        chunk_frames=8,
    )
    figures = run_scale(run, tmp_path)
    assert figures["driver"]["exit_code"] == 0, figures["driver_stderr_tail"]
    assert figures["outputs_published"] == 9
    store = figures["object_store"]
    # The driver stages each clip to probe it (and takes the audio from that copy); then
    # exactly one node stages it for every chunk of both its renders.
    assert store["clips_read_over_clip_bytes"] == 2.0
    assert store["sources_read_over_source_bytes"] == 1.0
    assert figures["chunks_rendered_twice"] == 0
