"""Where the project keeps downloaded and derived files on this machine."""

import os
from pathlib import Path

CACHE_ENV = "FACEFUSION_RAY_CACHE"


def cache_root() -> Path:
    """User cache folder; the `FACEFUSION_RAY_CACHE` environment variable overrides it."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "facefusion-ray"
