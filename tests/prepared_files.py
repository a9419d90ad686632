"""Checks of prepared model files that only the tests need (the store checks against its pins)."""

import hashlib
from pathlib import Path

from facefusion_ray.zoo.preparation import sidecar_path


def is_prepared_intact(prepared: Path) -> bool:
    """True when the prepared file exists and still has the digest recorded at creation."""
    sidecar = sidecar_path(prepared)
    if not prepared.is_file() or not sidecar.is_file():
        return False
    recorded = sidecar.read_text(encoding="utf-8").split()
    if not recorded:
        return False
    digest = hashlib.sha256()
    with prepared.open("rb") as stream:
        for block in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest() == recorded[0]
