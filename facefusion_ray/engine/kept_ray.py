"""A local Ray kept between jobs: `facefusion-ray ray start | status | stop`.

`start` launches a keeper process (`engine/ray_keeper.py`) that starts a local Ray and holds
it until `stop`, until it has served no job for its idle limit, or until the Ray dies. The
keeper records itself in a file beside Ray's own `ray_current_cluster` (Ray's temp folder,
`$RAY_TMPDIR/ray` or `/tmp/ray`), one per user and Python environment, so a job of this
environment finds and joins it, and a job of another checkout never runs on its code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from facefusion_ray.atomic_files import write_bytes_atomically
from facefusion_ray.errors import FaceFusionRayError

KEEPER_MODULE = "facefusion_ray.engine.ray_keeper"
DEFAULT_IDLE_MINUTES = 30.0
AUTH_MODE_VARIABLE = "RAY_AUTH_MODE"
# How long `ray start` waits for the keeper's Ray, and `ray stop` for it to go.
START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class KeptRay:
    address: str
    pid: int
    python: str
    cpus: int
    idle_minutes: float
    started: float  # time.time() when the Ray was up
    log: str
    # Ray's RAY_AUTH_MODE in the keeper once its Ray was up ("token" unless set otherwise).
    auth_mode: str | None = None
    # Where the warm driver (engine/warm_driver.py) takes commands; it may still be starting.
    driver_socket: str | None = None

    def join_as_started(self) -> None:
        """Drivers of this process join with the keeper's auth mode: a Ray started with
        RAY_AUTH_MODE unset requires the user's token, which a joining driver only sends
        when its own mode says token."""
        if self.auth_mode != "token" or AUTH_MODE_VARIABLE in os.environ:
            return
        # Ray read its configuration when imported: set the mode and have Ray read it again.
        from ray._private.authentication.authentication_token_setup import _enable_token_auth

        _enable_token_auth()

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def ray_temp_folder() -> Path:
    """Ray's temp folder, where it keeps its sockets, logs and `ray_current_cluster`: Ray's own
    choice (ray._common.utils.get_default_ray_temp_dir), made here without importing Ray so
    that the command line finds the warm driver in milliseconds."""
    if "RAY_TMPDIR" in os.environ:
        base = os.environ["RAY_TMPDIR"]
    elif sys.platform.startswith("linux") and "TMPDIR" in os.environ:
        base = os.environ["TMPDIR"]
    elif sys.platform.startswith(("darwin", "linux")):
        base = "/tmp"
    else:
        base = tempfile.gettempdir()
    return Path(base) / "ray"


def exec_environment() -> dict[str, str]:
    """The environment this process was started with, before any import changed `os.environ`
    (OpenCV adds to LD_LIBRARY_PATH, Ray sets its modes): what the keeper and its warm driver
    start with, so a later command's environment compares with the user's own."""
    try:
        entries = Path("/proc/self/environ").read_bytes().split(b"\0")
    except OSError:
        return dict(os.environ)
    pairs = (entry.decode(errors="surrogateescape").partition("=") for entry in entries if entry)
    return {name: value for name, _, value in pairs}


def environment_tag() -> str:
    """This user and Python environment: a kept Ray runs the code installed here."""
    prefix = hashlib.sha256(sys.prefix.encode()).hexdigest()[:10]
    return f"{os.getuid()}-{prefix}"


def record_path() -> Path:
    return ray_temp_folder() / f"facefusion-ray-kept-{environment_tag()}.json"


def write_record(kept: KeptRay, path: Path) -> None:
    write_bytes_atomically(path, json.dumps(kept.to_dict(), indent=2).encode())


def find_kept_ray() -> KeptRay | None:
    """The Ray kept for this environment, if its keeper is alive; a stale record is removed."""
    path = record_path()
    try:
        kept = KeptRay(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if keeper_alive(kept.pid):
        return kept
    path.unlink(missing_ok=True)
    return None


def keeper_alive(pid: int) -> bool:
    """The process exists and is a keeper (not another process that got its pid since)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc here: trust the pid
    return KEEPER_MODULE.encode() in command


def start_kept_ray(
    cpus: int, idle_minutes: float, warm_driver: str | None = None
) -> tuple[KeptRay, bool]:
    """The kept Ray of this environment, started now unless one runs; True when started.
    `warm_driver`: the module of a warm driver the keeper runs beside its Ray."""
    running = find_kept_ray()
    if running is not None:
        return running, False
    path = record_path()
    log = path.with_suffix(".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", KEEPER_MODULE, "--cpus", str(cpus)]
    command += ["--idle-minutes", str(idle_minutes), "--record", str(path), "--log", str(log)]
    if warm_driver:
        command += ["--warm-driver", warm_driver]
    with log.open("wb") as output:
        # Its own session: the keeper outlives this command and the terminal it ran in.
        keeper = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=exec_environment(),
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        kept = find_kept_ray()
        if kept is not None and kept.pid == keeper.pid:
            return kept, True
        if keeper.poll() is not None:
            raise FaceFusionRayError(f"the kept Ray did not start: {_last_line(log)} (log: {log})")
        time.sleep(0.1)
    keeper.kill()
    raise FaceFusionRayError(f"the kept Ray did not start within {START_TIMEOUT_SECONDS:.0f} s")


def stop_kept_ray() -> KeptRay | None:
    """Stop the kept Ray of this environment (its actors with it); None when none runs."""
    kept = find_kept_ray()
    if kept is None:
        return None
    _signal(kept.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while keeper_alive(kept.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if keeper_alive(kept.pid):
        # Its Ray's processes share its fate: they go with it.
        _signal(kept.pid, signal.SIGKILL)
    record_path().unlink(missing_ok=True)
    return kept


def _signal(pid: int, number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, number)


def _last_line(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "no output"
