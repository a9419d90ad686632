"""Keeping the node's staged copies of remote inputs (s3:// targets and sources) in bounds."""

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from facefusion_ray.paths import cache_root
from facefusion_ray.storage.locations import STAGED_FOLDER_NAME

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StagedCopy:
    folder: Path
    size_bytes: int
    last_used: float  # the folder's mtime, refreshed whenever the copy is reused


def staged_copies(root: Path | None = None) -> list[StagedCopy]:
    """Every staged copy on this node, least recently used first."""
    root = root or cache_root() / STAGED_FOLDER_NAME
    if not root.is_dir():
        return []
    copies = [
        StagedCopy(
            folder,
            sum(_bytes_on_disk(path) for path in folder.iterdir() if path.is_file()),
            folder.stat().st_mtime,
        )
        for folder in root.iterdir()
        if folder.is_dir()
    ]
    return sorted(copies, key=lambda copy: copy.last_used)


def _bytes_on_disk(path: Path) -> int:
    """A file's size, or the space it takes when that is less: an index stand-in is a sparse
    file as long as its target that holds only the index."""
    status = path.stat()
    return min(status.st_size, status.st_blocks * 512)


def prune_staged_copies(max_bytes: int, root: Path | None = None) -> list[StagedCopy]:
    """Remove the least recently used staged copies until at most `max_bytes` remain.

    Each removal holds the copy's staging lock, so a job staging it at that moment either
    finishes first or downloads it again; a file already open (ffmpeg) stays readable.
    """
    root = root or cache_root() / STAGED_FOLDER_NAME
    copies = staged_copies(root)
    total = sum(copy.size_bytes for copy in copies)
    removed: list[StagedCopy] = []
    for copy in copies:
        if total <= max_bytes:
            break
        with FileLock(str(root / f"{copy.folder.name}.lock")):
            shutil.rmtree(copy.folder, ignore_errors=True)
        (root / f"{copy.folder.name}.lock").unlink(missing_ok=True)
        total -= copy.size_bytes
        removed.append(copy)
        logger.info("removed staged copy %s (%d bytes)", copy.folder.name, copy.size_bytes)
    return removed
