"""The cache-read benchmark measures a real chunk: analysed with the embedded detector,
written to and read back from a local folder and a real S3 server."""

from pathlib import Path

from benchmarks.cache_read import run_cache_read
from benchmarks.workspace import Workspace


def test_cache_read_benchmark_reads_back_the_analysed_chunk(tmp_path: Path) -> None:
    result = run_cache_read(Workspace(tmp_path), "many")
    assert result["frames"] == 64
    # The first chunk of the sample shows six people in every frame.
    assert result["faces"] == 6 * 64
    analysis = result["analysis_seconds"]
    assert isinstance(analysis, float) and analysis > 0
    stores = result["stores"]
    assert isinstance(stores, dict) and set(stores) == {"local", "s3_seaweedfs"}
    for figures in stores.values():
        assert figures["chunk_bytes"] > 0
        read_share = figures["read_share_of_analysis"]
        assert 0 < read_share < figures["read_and_fingerprint_share_of_analysis"]
