"""`facefusion-ray cache stats | prune | verify | purge` on the analysis cache, and
`cache prune-staged` for this node's copies of s3:// inputs."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from facefusion_ray.cache.analysis_chunks import ANALYSIS_CACHE_ENV, AnalysisCache
from facefusion_ray.cache.operations import cache_stats, prune, purge_video, verify
from facefusion_ray.cli.job_arguments import add_storage_option_argument
from facefusion_ray.storage import parse_storage_options

EXIT_VERIFY_FAILED = 1


def add_cache_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cache = subparsers.add_parser("cache", help="inspect and maintain the analysis cache")
    actions = cache.add_subparsers(dest="cache_command", required=True)

    stats = actions.add_parser("stats", help="entries, bytes, videos, oldest and newest use")
    _add_cache_options(stats)

    pruning = actions.add_parser("prune", help="remove least recently used chunks")
    _add_cache_options(pruning)
    pruning.add_argument(
        "--max-bytes", type=_byte_count, required=True, metavar="N", help="size to keep at most"
    )

    verifying = actions.add_parser("verify", help="re-read every chunk; non-zero exit when bad")
    _add_cache_options(verifying)

    purge = actions.add_parser("purge", help="remove every chunk of one video")
    _add_cache_options(purge)
    purge.add_argument("--video", required=True, metavar="FINGERPRINT", help="video fingerprint")

    staged = actions.add_parser(
        "prune-staged",
        help="remove this node's least recently used local copies of s3:// inputs",
    )
    staged.add_argument(
        "--max-bytes", type=_byte_count, required=True, metavar="N", help="size to keep at most"
    )


def run_cache_command(args: argparse.Namespace) -> int:
    if args.cache_command == "prune-staged":
        return _run_prune_staged(args)
    handlers: dict[str, Callable[[AnalysisCache, argparse.Namespace], int]] = {
        "stats": _run_stats,
        "prune": _run_prune,
        "verify": _run_verify,
        "purge": _run_purge,
    }
    cache = AnalysisCache(args.cache, parse_storage_options(args.storage_option))
    return handlers[args.cache_command](cache, args)


def _run_prune_staged(args: argparse.Namespace) -> int:
    from facefusion_ray.storage.staged_inputs import prune_staged_copies

    removed = prune_staged_copies(args.max_bytes)
    freed = sum(copy.size_bytes for copy in removed)
    print(f"pruned {len(removed)} staged copies, {freed} bytes")
    return 0


def _run_stats(cache: AnalysisCache, args: argparse.Namespace) -> int:
    print(json.dumps(cache_stats(cache), indent=2))
    return 0


def _run_prune(cache: AnalysisCache, args: argparse.Namespace) -> int:
    removed = prune(cache, args.max_bytes)
    for entry in removed:
        print(f"removed {entry.analysis_key}/{entry.video_fingerprint}/{entry.name}")
    freed = sum(entry.size_bytes for entry in removed)
    print(f"pruned {len(removed)} chunks, {freed} bytes, from {cache.describe()}")
    return 0


def _run_verify(cache: AnalysisCache, args: argparse.Namespace) -> int:
    report = verify(cache)
    for path, reason in report.bad:
        print(f"BAD {path}: {reason}")
    if report.outdated:
        print(f"{len(report.outdated)} chunks of another schema version (not checked)")
    print(f"checked {report.checked} chunks in {cache.describe()}: {len(report.bad)} bad")
    return 0 if report.ok else EXIT_VERIFY_FAILED


def _run_purge(cache: AnalysisCache, args: argparse.Namespace) -> int:
    removed = purge_video(cache, args.video)
    print(f"purged {len(removed)} chunks of video {args.video} from {cache.describe()}")
    return 0


def _byte_count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _add_cache_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache",
        metavar="URL",
        help=f"analysis cache: a folder or s3://bucket/prefix (default: ${ANALYSIS_CACHE_ENV} "
        "or the user cache)",
    )
    add_storage_option_argument(parser, "the analysis cache")
