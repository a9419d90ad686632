"""Writing files so readers see either the old file or the whole new one, never a torn one."""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def temporary_file_beside(target: Path, mode: int | None = None) -> Iterator[Path]:
    """An empty temp file in `target`'s folder (so `os.replace` onto `target` is atomic).

    The folder is created if needed; `mode` overrides mkstemp's 0600. The temp file is removed
    on exit unless it was moved away.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".partial", dir=target.parent
    )
    os.close(descriptor)
    temporary = Path(name)
    if mode is not None:
        temporary.chmod(mode)
    try:
        yield temporary
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes_atomically(target: Path, payload: bytes) -> None:
    with temporary_file_beside(target) as temporary:
        temporary.write_bytes(payload)
        os.replace(temporary, target)


# Files that hold faces (analysis embeddings, face-swapped segments): this account's only.
PRIVATE_FILE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700


def make_private_folders(folder: Path) -> None:
    """Create `folder` and any missing parents as 0700 (existing parents are left as they are)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=PRIVATE_FOLDER_MODE)
        except FileExistsError:
            continue
        path.chmod(PRIVATE_FOLDER_MODE)  # mkdir's mode is masked by the umask
