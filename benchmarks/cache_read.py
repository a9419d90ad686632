"""Reading one chunk's analysis from the cache against analysing it, in one process.

The chunk is the first 64 frames of the 720p sample (the default chunk size when this was
written), six faces in each: later frames cut to fewer people.
The analysis runs on one ONNX Runtime thread, as in an engine worker: the detector alone (the
default `many` selector), or the detector and an embedding of every face (the `reference`
selector). Reading is timed from a local folder and from a real S3 server (SeaweedFS), and
split into the two costs a worker pays on a hit: the SHA-256 fingerprint of every decoded frame
(which a cold run computes as well, to write the cache) and fetching, parsing and checking the
Parquet chunk against those fingerprints.
"""

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.workspace import Workspace
from facefusion_ray.analysis.select import FaceSelection
from facefusion_ray.cache import AnalysisCache, FrameAnalysis
from facefusion_ray.media import iter_decoded_frames
from facefusion_ray.media.probe import probe_media
from facefusion_ray.pipeline.frame_pipeline import FrameAnalyser
from facefusion_ray.pipeline.job_models import JobModels
from facefusion_ray.pipeline.stage_clock import StageClock
from facefusion_ray.settings import SwapSettings
from tests.seaweedfs import running_s3_server

CACHE_READ_SCENARIOS = {
    "cache_read_chunk_detector": "many",
    "cache_read_chunk_detector_and_embeddings": "reference",
}
READ_REPEATS = 5
CHUNK_FRAMES = 64
READ_TARGET_SHARE = 0.05
# Stand-in identifiers: the store only needs them to be stable within the benchmark.
VIDEO_FINGERPRINT = "0" * 64
ANALYSIS_KEY = "benchmark-" + "0" * 16


def run_cache_read(workspace: Workspace, selector_mode: str) -> dict[str, object]:
    settings = SwapSettings(face_selector=FaceSelection(mode=selector_mode))
    target = workspace.target("720p")
    info = probe_media(target)
    frames = list(iter_decoded_frames(str(target), 0, CHUNK_FRAMES, info))
    # What a worker runs on a cache miss, with the engine's own (lazy, clocked) analysis.
    models = JobModels(settings.execution)
    analyse = FrameAnalyser(
        settings, models.plan_for(settings), models.sessions_for(settings), StageClock()
    ).analyse
    analyse(frames[0].pixels)  # sessions load and warm up outside the timing
    started = time.perf_counter()
    faces = [analyse(frame.pixels) for frame in frames]
    analysis_seconds = time.perf_counter() - started
    started = time.perf_counter()
    fingerprints = [frame.fingerprint() for frame in frames]
    fingerprint_seconds = time.perf_counter() - started
    records = [
        FrameAnalysis(index, fingerprint, frame_faces)
        for index, (fingerprint, frame_faces) in enumerate(zip(fingerprints, faces, strict=True))
    ]
    stores: dict[str, dict[str, object]] = {}
    for store_name, cache in stores_to_read(workspace.folder / f"cache-read-{selector_mode}"):
        cache.write(VIDEO_FINGERPRINT, ANALYSIS_KEY, records)
        read = median_read_seconds(cache, fingerprints)
        (entry,) = cache.entries()  # each store holds this one chunk
        stores[store_name] = {
            "chunk_bytes": entry.size_bytes,
            "read_seconds": round(read, 5),
            "read_share_of_analysis": round(read / analysis_seconds, 4),
            "read_and_fingerprint_share_of_analysis": round(
                (read + fingerprint_seconds) / analysis_seconds, 4
            ),
        }
    return {
        "selector_mode": selector_mode,
        "frames": len(frames),
        "faces": sum(len(frame_faces) for frame_faces in faces),
        "analysis_seconds": round(analysis_seconds, 4),
        "fingerprint_seconds": round(fingerprint_seconds, 4),
        "fingerprint_ms_per_frame": round(fingerprint_seconds / len(frames) * 1000, 2),
        "stores": stores,
    }


@contextmanager
def s3_cache(folder: Path) -> Iterator[AnalysisCache]:
    with running_s3_server(folder) as server:
        bucket = server.create_bucket("bench")
        yield AnalysisCache(f"s3://{bucket}/analysis", server.storage_options())


def stores_to_read(folder: Path) -> Iterator[tuple[str, AnalysisCache]]:
    local = folder / "local"
    yield "local", AnalysisCache(str(local))
    server_folder = folder / "seaweedfs"
    server_folder.mkdir(parents=True)
    with s3_cache(server_folder) as cache:
        yield "s3_seaweedfs", cache


def median_read_seconds(cache: AnalysisCache, fingerprints: list[str]) -> float:
    """A worker keeps its cache client, so the first read (connection set-up) is left out."""
    timings = []
    for _ in range(READ_REPEATS + 1):
        started = time.perf_counter()
        found = cache.lookup(VIDEO_FINGERPRINT, ANALYSIS_KEY, 0, len(fingerprints), fingerprints)
        timings.append(time.perf_counter() - started)
        if found is None:
            raise RuntimeError("the chunk just written was not found in the cache")
    return statistics.median(timings[1:])
