"""What the entry points share: logging, the Ray address, job options from a spec, and
writing report files to a folder or an s3:// prefix."""

import argparse
import logging
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from facefusion_ray.atomic_files import write_bytes_atomically
from facefusion_ray.engine.ray_runtime import RAY_ADDRESS_VARIABLE, cluster_to_join
from facefusion_ray.log_redaction import install_redaction
from facefusion_ray.storage.locations import is_remote, publish_output

RAY_ADDRESS_ENV = RAY_ADDRESS_VARIABLE
EXIT_OK = 0
EXIT_FAILED = 1


def configure_logging(verbose: bool) -> None:
    """Logs go to stderr; stdout keeps the one summary a job prints."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    install_redaction()


def default_address() -> str | None:
    """`ray job submit` sets RAY_ADDRESS for the job's driver, so a submitted job joins its
    cluster; run by hand without it, the job starts a local Ray."""
    return cluster_to_join(None)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options of the spec-driven entry points: where Ray and the segments are."""
    parser.add_argument(
        "--address",
        default=default_address(),
        help="Ray cluster to join, e.g. auto (default: $RAY_ADDRESS, which `ray job submit` "
        "sets; without it a local Ray is started)",
    )
    parser.add_argument(
        "--work-store",
        metavar="URL",
        help="where finished segments wait for assembly and resume: a folder or s3://... shared "
        "by all nodes (default: $FACEFUSION_RAY_WORK_STORE or the user cache)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def write_files(
    files: Mapping[str, bytes], folder: str, storage_options: Mapping[str, str]
) -> list[str]:
    """Each named file into a local folder or an s3:// prefix, each written atomically;
    returns their locations."""
    locations = []
    for name, payload in files.items():
        location = f"{folder.rstrip('/')}/{name}" if is_remote(folder) else str(Path(folder, name))
        if is_remote(location):
            with tempfile.TemporaryDirectory(prefix="facefusion-ray-report-") as scratch:
                local = Path(scratch) / name
                local.write_bytes(payload)
                publish_output(local, location, storage_options)
        else:
            Path(folder).mkdir(parents=True, exist_ok=True)
            write_bytes_atomically(Path(location), payload)
        locations.append(location)
    return locations
