"""A catalog on a simulated cluster: how the system (not the models) behaves as the catalog grows.

Every run starts a real SeaweedFS holding a synthetic catalog (clips x sources renders) behind a
byte-counting proxy, a `ray.cluster_utils.Cluster` of worker nodes (some announcing a fake GPU)
and the catalog job's driver in a process of its own, and records: driver preparation per
render, driver peak RSS, the driver's scheduling time per chunk, object-store bytes read over
the catalog's bytes, chunks rendered twice, and with `--remove-node-at` a worker node lost
mid-run. Several `--clips` sizes give a projection to 10,000 renders.

Usage: python -m benchmarks.scale [--quick] [--clips N [N ...]] [--sources N] [--nodes N]
       [--gpu-nodes N] [--frames N] [--clip-size N] [--lossless] [--chunk-frames N]
       [--remove-node-at SHARE]
       [--dry-run] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.scale_catalog import CLIP_SIZE, CatalogShape
from benchmarks.scale_cluster import ClusterShape
from benchmarks.scale_figures import projection, targets
from benchmarks.scale_run import ScaleRun, chunks_per_render

RESULTS_DIR = Path(__file__).resolve().parent / "results" / "scale"
# The catalog: 300 clips x 8 sources = 2,400 renders.
FULL_CLIPS, FULL_SOURCES = 300, 8
# About a minute on 2 idle cores: 4 clips x 2 sources on 3 nodes, one of them lost mid-run.
QUICK = {"clips": [4], "sources": 2, "nodes": 3, "gpu_nodes": 1, "remove_node_at": 0.3}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"a small run: {QUICK}")
    parser.add_argument(
        "--clips", type=int, nargs="+", default=[FULL_CLIPS], help="catalog size(s), one run each"
    )
    parser.add_argument("--sources", type=int, default=FULL_SOURCES, help="source faces")
    parser.add_argument("--frames", type=int, default=24, help="frames a clip (12 fps)")
    parser.add_argument("--clip-size", type=int, default=CLIP_SIZE, help="clip width and height")
    parser.add_argument(
        "--lossless", action="store_true", help="lossless clips: MB-sized at --clip-size 256"
    )
    parser.add_argument("--chunk-frames", type=int, default=8, help="the job's chunk_frames")
    parser.add_argument("--nodes", type=int, default=8, help="worker nodes of 1 CPU")
    parser.add_argument("--gpu-nodes", type=int, default=2, help="nodes with a fake GPU")
    parser.add_argument(
        "--remove-node-at",
        type=float,
        metavar="SHARE",
        help="remove a worker node once this share of the chunks is committed (0-1)",
    )
    parser.add_argument(
        "--stage-below-bytes",
        type=int,
        metavar="N",
        help="the job's --stage-below-bytes: 0 reads every target by range (default: the "
        "engine's, which stages the benchmark's small clips whole on each node)",
    )
    parser.add_argument(
        "--driver-only",
        action="store_true",
        help="no cluster: the driver's feed prepares every render against SeaweedFS (preparation "
        "per render and heap growth, for catalogs too large to render here)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    parser.add_argument(
        "--output", type=Path, help="result JSON (default: benchmarks/results/scale/)"
    )
    return parser


def planned_runs(args: argparse.Namespace) -> list[ScaleRun]:
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    if args.remove_node_at is not None and not 0 < args.remove_node_at < 1:
        raise ValueError("--remove-node-at is a share of the chunks, between 0 and 1")
    if min(args.clips) < 1 or args.sources < 1 or args.nodes < 2:
        raise ValueError("a run needs at least one clip, one source and two worker nodes")
    cluster = ClusterShape(nodes=args.nodes, gpu_nodes=min(args.gpu_nodes, args.nodes))
    return [
        ScaleRun(
            CatalogShape(
                clips, args.sources, args.frames, size=args.clip_size, lossless=args.lossless
            ),
            cluster,
            chunk_frames=args.chunk_frames,
            remove_node_at=args.remove_node_at,
            stage_below_bytes=args.stage_below_bytes,
        )
        for clips in args.clips
    ]


def describe(run: ScaleRun) -> dict[str, Any]:
    chunks = chunks_per_render(run)
    return {
        "renders": run.catalog.renders,
        "catalog": asdict(run.catalog),
        "cluster": run.cluster.describe(),
        "workers": run.workers,
        "chunks_per_render": chunks,
        "chunks": chunks * run.catalog.renders,
        "remove_node_at": run.remove_node_at,
    }


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        runs = planned_runs(args)
    except ValueError as error:
        parser.error(str(error))
    if args.dry_run:
        print(json.dumps([describe(run) for run in runs], indent=2))
        return 0
    from benchmarks.run import machine_description
    from benchmarks.scale_run import run_scale

    if args.driver_only:
        return driver_only(runs, args)

    results: list[dict[str, Any]] = []
    output = args.output or RESULTS_DIR / f"{datetime.now(UTC).date().isoformat()}-scale.json"
    command = " ".join([sys.executable, "-m", "benchmarks.scale", *(argv or sys.argv[1:])])
    for run in runs:
        print(f"scale run: {json.dumps(describe(run))}", file=sys.stderr, flush=True)
        load_before = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="facefusion-ray-scale-") as temporary:
            results.append(run_scale(run, Path(temporary)))
        # The machine may be shared: its load says how far the timings can be trusted.
        results[-1]["load_average_1min"] = {"before": load_before, "after": os.getloadavg()[0]}
        print(f"  {headline(results[-1])}", file=sys.stderr, flush=True)
        # Written after every run, so a long series keeps what it measured.
        document = result_document(command, machine_description(), results)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document["targets"], indent=2))
    print(f"results: {output}")
    failed = [run for run in results if run["driver"]["exit_code"] or run["counts"]["failed"]]
    return 1 if failed else 0


def driver_only(runs: list[ScaleRun], args: argparse.Namespace) -> int:
    from benchmarks.run import machine_description
    from benchmarks.scale_prep import prepare_catalog

    results = []
    for run in runs:
        with tempfile.TemporaryDirectory(prefix="facefusion-ray-scale-prep-") as temporary:
            load_before = os.getloadavg()[0]
            results.append(prepare_catalog(run, Path(temporary)))
            results[-1]["load_average_1min"] = {"before": load_before, "after": os.getloadavg()[0]}
        print(f"  {json.dumps({k: v for k, v in results[-1].items() if 'by_' not in k})}")
    document = {
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([sys.executable, "-m", "benchmarks.scale", *sys.argv[1:]]),
        "machine": machine_description(),
        "driver_only": results,
    }
    output = args.output or RESULTS_DIR / f"{datetime.now(UTC).date().isoformat()}-prep.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"results: {output}")
    return 1 if any(result["failed"] for result in results) else 0


def result_document(
    command: str, machine: dict[str, object], results: list[dict[str, Any]]
) -> dict[str, Any]:
    fitted = projection(results)
    return {
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine,
        "runs": results,
        "projection": fitted,
        "targets": targets(results, fitted),
    }


def headline(result: dict[str, Any]) -> str:
    return (
        f"{result['catalog']['renders']} renders in {result['job_seconds']} s, driver peak "
        f"{result['driver']['peak_rss_mib']} MiB, prep {result['preparation_ms_per_render']} ms, "
        f"read {result['object_store']['read_over_catalog_bytes']}x catalog, "
        f"{result['chunks_rendered_twice']} chunks twice"
    )


if __name__ == "__main__":
    sys.exit(main())
