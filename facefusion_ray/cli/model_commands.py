"""`facefusion-ray models list | pull | verify | import | add`: the model store from the command
line."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facefusion_ray.cli.job_arguments import add_storage_option_argument
from facefusion_ray.errors import ModelError
from facefusion_ray.storage import parse_storage_options
from facefusion_ray.zoo.facefusion_import import FolderImport, import_facefusion_folder
from facefusion_ray.zoo.model_store import ModelStore
from facefusion_ray.zoo.private_models import add_private_model
from facefusion_ray.zoo.store_layout import ModelStatus

EMBEDDED_MODELS = ("yunet", "sface")
EXIT_VERIFY_FAILED = 1


def add_models_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = subparsers.add_parser(
        "models", help="list, pull, verify, import and add models in the model store"
    )
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
    _add_import_and_add_commands(actions)


def _add_import_and_add_commands(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    importing = actions.add_parser(
        "import",
        help="copy the models of a FaceFusion model folder into the store, checked against "
        "their .hash files; nothing is downloaded",
    )
    importing.add_argument(
        "--from-facefusion",
        required=True,
        type=Path,
        metavar="DIR",
        help="FaceFusion's model folder (.assets/models): NAME.onnx beside NAME.hash",
    )
    _add_store_options(importing)

    add = actions.add_parser(
        "add",
        help="register private weights under a new id with the contract of a manifest model",
    )
    add.add_argument("id", metavar="ID", help="the new model id, e.g. studio_swapper_v2")
    add.add_argument(
        "file_or_url", metavar="FILE_OR_URL", help="the ONNX file: a path or an http(s) URL"
    )
    add.add_argument(
        "--like",
        required=True,
        metavar="MANIFEST_ID",
        help="the manifest model whose inputs, template and normalisation the weights follow",
    )
    _add_store_options(add)


def run_models_command(args: argparse.Namespace) -> int:
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "list": run_models_list,
        "pull": run_models_pull,
        "verify": run_models_verify,
        "import": run_models_import,
        "add": run_models_add,
    }
    return handlers[args.models_command](args)


def run_models_list(args: argparse.Namespace) -> int:
    store = _store_from(args)
    manifest = store.manifest
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
        for model_id in sorted(store.manifest.models)
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


def run_models_import(args: argparse.Namespace) -> int:
    store = _store_from(args)
    result = import_facefusion_folder(store, args.from_facefusion)
    for model in result.imported:
        state = "imported" if model.changed else "already in the store"
        built = f"; built {', '.join(model.built)}" if model.built else ""
        print(f"{model.model_id}: {model.file} {state} (sha256 {model.sha256}){built}")
    if result.skipped:
        print(f"skipped, no manifest model: {', '.join(result.skipped)}")
    if result.refused:
        raise ModelError(_refusal(result))
    if not result.imported:
        print(f"no manifest model in {result.folder}")
    return 0


def run_models_add(args: argparse.Namespace) -> int:
    store = _store_from(args)
    result = add_private_model(store, args.id, args.file_or_url, args.like)
    state = "added" if result.changed else "already registered"
    built = f"; built {', '.join(result.built)}" if result.built else ""
    print(f"{result.model_id}: {state} like {result.like} (sha256 {result.sha256}){built}")
    return 0


def _refusal(result: FolderImport) -> str:
    reasons = "; ".join(refused.reason for refused in result.refused)
    return f"refused {len(result.refused)} file(s) of {result.folder}: {reasons}"


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        help="model store: a folder or s3://bucket/prefix (default: $FACEFUSION_RAY_MODEL_STORE "
        "or the user cache)",
    )
    add_storage_option_argument(parser, "the model store")


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
        "origin": status.origin,
        "sources": list(status.source),
    }


def _table(rows: list[dict[str, Any]]) -> str:
    header = ("ID", "KIND", "PRESENT", "VERIFIED", "SIZE", "VARIANTS", "ORIGIN", "SOURCES")
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
                row["origin"] or "-",
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
