"""One catalog job on a simulated cluster, measured: the catalog in SeaweedFS behind a byte-counting
proxy, the driver (`python -m ray_jobs.render_catalog`) in a process of its own joining the
cluster, and optionally a worker node removed once part of the chunks are committed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.byte_proxy import ByteCountingProxy, TrafficCounts, counting_proxy
from benchmarks.scale_catalog import Catalog, CatalogShape, build_catalog
from benchmarks.scale_cluster import ClusterShape, node_cache, simulated_cluster
from facefusion_ray.paths import CACHE_ENV
from tests.seaweedfs import S3Server, running_s3_server

BUCKETS = ("clips", "faces", "work", "cache", "out")
SEGMENT_RECORD = re.compile(r"/frames-\d+-\d+\.json$")
SEGMENT = re.compile(r"/frames-\d+-\d+\.mp4$")
DRIVER_TIMEOUT_SECONDS = 3600.0
STDERR_TAIL_LINES = 30


@dataclass(frozen=True)
class ScaleRun:
    catalog: CatalogShape
    cluster: ClusterShape
    chunk_frames: int = 8
    # Remove a worker node once this share of the expected segments is committed (None: never).
    remove_node_at: float | None = None
    # The job's stage_below_bytes option (None: the engine's default): targets smaller than
    # this are staged whole on every node, larger ones read by range.
    stage_below_bytes: int | None = None

    @property
    def workers(self) -> int:
        return self.cluster.nodes * self.cluster.cpus_per_node


def spec_text(run: ScaleRun, buckets: dict[str, str], endpoint: str, server: S3Server) -> str:
    """The batch spec of the job: every clip with every source, everything in the store."""
    sources = ", ".join(
        f'"s3://{buckets["faces"]}/faces/face_{index:02d}.png"'
        for index in range(run.catalog.sources)
    )
    return "\n".join(
        [
            f'targets: ["s3://{buckets["clips"]}/clips/*.mp4"]',
            f"sources: [{sources}]",
            f'output: "s3://{buckets["out"]}/{{target_stem}}__{{source_stem}}.mp4"',
            "options:",
            "  face_swapper_model: classic",
            "  face_detector_frame_aspect: true",
            f"  chunk_frames: {run.chunk_frames}",
            *(
                []
                if run.stage_below_bytes is None
                else [f"  stage_below_bytes: {run.stage_below_bytes}"]
            ),
            f'  analysis_cache: "s3://{buckets["cache"]}/analysis"',
            f"workers: {run.workers}",
            "storage_options:",
            f'  client_kwargs.endpoint_url: "{endpoint}"',
            f'  key: "{server.access_key}"',
            f'  secret: "{server.secret_key}"',
            "",
        ]
    )


def upload_catalog(server: S3Server, catalog: Catalog, buckets: dict[str, str]) -> None:
    """Straight to the server, past the proxy: setting up is not the job's traffic."""
    client = server._client()
    for path in catalog.clips:
        client.upload_file(str(path), buckets["clips"], f"clips/{path.name}")
    for path in catalog.sources:
        client.upload_file(str(path), buckets["faces"], f"faces/{path.name}")


def run_scale(run: ScaleRun, folder: Path) -> dict[str, Any]:
    catalog = build_catalog(run.catalog, folder / "catalog")
    server_folder = folder / "seaweedfs"
    server_folder.mkdir()
    with running_s3_server(server_folder) as server, counting_proxy(server.endpoint_url) as proxy:
        buckets = {name: server.create_bucket(name) for name in BUCKETS}
        upload_catalog(server, catalog, buckets)
        spec = folder / "catalog.yaml"
        spec.write_text(spec_text(run, buckets, proxy.endpoint_url, server))
        report = folder / "report.json"
        with simulated_cluster(run.cluster, folder / "nodes") as cluster:
            expected = run.catalog.renders * chunks_per_render(run)
            remover = NodeRemover(proxy, buckets["work"], expected, run.remove_node_at, cluster)
            command = [
                sys.executable, "-m", "ray_jobs.render_catalog", str(spec),
                "--address", cluster.address, "--report", str(report),
                "--work-store", f"s3://{buckets['work']}/segments", "--no-progress",
            ]  # fmt: skip
            environment = {
                **os.environ,
                **server.environment(),
                "AWS_ENDPOINT_URL": proxy.endpoint_url,
                CACHE_ENV: str(node_cache(folder / "nodes", "driver")),
                "RAY_AUTH_MODE": "disabled",
            }
            published = partial(count_puts, proxy, buckets["out"])
            driver = run_driver(command, environment, remover, published)
        traffic = proxy.snapshot(settled=True)
        outputs = len(server._client().list_objects_v2(Bucket=buckets["out"]).get("Contents", []))
    if not report.is_file():
        raise RuntimeError(f"the catalog job wrote no report:\n{driver.stderr_tail}")
    return figures(run, catalog, json.loads(report.read_text()), traffic, driver, buckets) | {
        "outputs_published": outputs,
        "node_removed": remover.removed,
    }


def chunks_per_render(run: ScaleRun) -> int:
    """As the engine plans them: `plan_video` with the job's `chunk_balance`."""
    from facefusion_ray.engine.render_plan import chunk_balance
    from facefusion_ray.pipeline.chunks import plan_chunks

    spread = chunk_balance(run.catalog.renders, run.workers)
    return len(plan_chunks(run.catalog.frames, run.chunk_frames, spread))


class NodeRemover:
    """Watches the segment records the job commits and removes worker node 0 (which holds an
    actor: there are as many actors as worker CPUs) once `share` of `expected` are in."""

    def __init__(
        self,
        proxy: ByteCountingProxy,
        work_bucket: str,
        expected: int,
        share: float | None,
        cluster: Any,
    ) -> None:
        self.removed: dict[str, object] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, args=(proxy, work_bucket, expected, share, cluster), daemon=True
        )
        if share is not None:
            self._thread.start()

    def _watch(
        self, proxy: ByteCountingProxy, bucket: str, expected: int, share: float, cluster: Any
    ) -> None:
        while not self._stop.wait(0.2):
            committed = count_keys(proxy.snapshot(), bucket, SEGMENT_RECORD)
            if committed >= share * expected:
                node_id = cluster.remove_worker(0)
                self.removed = {"node_id": node_id, "segments_committed_before": committed}
                return

    def stop(self) -> None:
        self._stop.set()


def count_puts(proxy: ByteCountingProxy, bucket: str) -> int:
    return proxy.snapshot().requests[(bucket, "PUT")]


def count_keys(traffic: TrafficCounts, bucket: str, pattern: re.Pattern[str]) -> int:
    return sum(
        1 for (name, key) in traffic.writes_by_key if name == bucket and pattern.search("/" + key)
    )


@dataclass(frozen=True)
class DriverRun:
    wall_seconds: float
    peak_rss_bytes: int
    exit_code: int
    stderr_tail: str
    # (seconds since start, RSS MiB, outputs published so far), every RSS_SAMPLE_SECONDS.
    rss_timeline: list[tuple[float, float, int]]


RSS_SAMPLE_SECONDS = 1.0


def run_driver(
    command: list[str],
    environment: dict[str, str],
    remover: NodeRemover,
    outputs: Callable[[], int],
) -> DriverRun:
    """The driver in a process of its own; its peak RSS from the kernel's accounting (wait4),
    its RSS over time from /proc beside the outputs published so far."""
    started = time.perf_counter()
    log = Path(environment[CACHE_ENV]) / "driver.log"
    timeline: list[tuple[float, float, int]] = []
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            command, env=environment, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr
        )
        sampler = threading.Thread(
            target=sample_rss, args=(process.pid, started, outputs, timeline), daemon=True
        )
        sampler.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            remover.stop()
        sampler.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-STDERR_TAIL_LINES:])
    return DriverRun(
        round(time.perf_counter() - started, 2),
        usage.ru_maxrss * 1024,
        process.returncode,
        tail,
        timeline,
    )


def sample_rss(
    pid: int, started: float, outputs: Callable[[], int], timeline: list[tuple[float, float, int]]
) -> None:
    status = Path(f"/proc/{pid}/status")
    while True:
        try:
            lines = status.read_text().splitlines()
        except (FileNotFoundError, ProcessLookupError):
            return
        resident = [line for line in lines if line.startswith("VmRSS:")]
        if not resident:  # a zombie waiting to be reaped
            return
        mib = int(resident[0].split()[1]) / 1024
        timeline.append((round(time.perf_counter() - started, 1), round(mib, 1), outputs()))
        time.sleep(RSS_SAMPLE_SECONDS)


def figures(
    run: ScaleRun,
    catalog: Catalog,
    report: dict[str, Any],
    traffic: TrafficCounts,
    driver: DriverRun,
    buckets: dict[str, str],
) -> dict[str, Any]:
    from benchmarks.scale_figures import job_figures

    catalog_bytes = catalog.bytes()
    named = {bucket: name for name, bucket in buckets.items()}
    by_name = {named.get(bucket, bucket): ops for bucket, ops in traffic.as_dict().items()}
    read = traffic.bytes_read(buckets["clips"]) + traffic.bytes_read(buckets["faces"])
    return {
        "catalog": asdict(run.catalog) | {"renders": run.catalog.renders, "bytes": catalog_bytes},
        "cluster": asdict(run.cluster) | {"workers": run.workers},
        "chunk_frames": run.chunk_frames,
        "stage_below_bytes": run.stage_below_bytes,
        "driver": {
            "exit_code": driver.exit_code,
            "wall_seconds": driver.wall_seconds,
            "peak_rss_mib": round(driver.peak_rss_bytes / 2**20, 1),
        },
        "object_store": {
            "catalog_bytes_read": read,
            "read_over_catalog_bytes": round(read / sum(catalog_bytes.values()), 3),
            "clips_read_over_clip_bytes": round(
                traffic.bytes_read(buckets["clips"]) / catalog_bytes["clips"], 3
            ),
            "sources_read_over_source_bytes": round(
                traffic.bytes_read(buckets["faces"]) / catalog_bytes["sources"], 3
            ),
            "traffic": by_name,
        },
        "segments_written": count_keys(traffic, buckets["work"], SEGMENT),
        # A chunk committed (its record written) twice was rendered twice; a segment uploaded
        # again without a second commit is a chunk whose first render was lost with its node.
        "chunks_rendered_twice": repeated_writes(traffic, buckets["work"], SEGMENT_RECORD),
        "segments_uploaded_again": repeated_writes(traffic, buckets["work"], SEGMENT),
        "driver_rss_timeline": thinned(driver.rss_timeline),
        **job_figures(report),
        "driver_stderr_tail": driver.stderr_tail if driver.exit_code else "",
    }


def repeated_writes(traffic: TrafficCounts, bucket: str, pattern: re.Pattern[str]) -> int:
    return sum(
        count - 1
        for (name, key), count in traffic.writes_by_key.items()
        if name == bucket and pattern.search("/" + key) and count > 1
    )


TIMELINE_POINTS = 60


def thinned(timeline: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """At most TIMELINE_POINTS samples, evenly spaced, the last one kept."""
    step = max(1, -(-len(timeline) // TIMELINE_POINTS))
    kept = timeline[::step]
    if timeline and kept[-1] != timeline[-1]:
        kept.append(timeline[-1])
    return kept
