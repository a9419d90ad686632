"""The kept Ray's warm driver: a process that has imported what a job's driver imports (Ray,
ONNX Runtime, OpenCV, pyarrow, this project) and forks a child per command, so a later job on
the machine does not pay those imports again (0.7-0.9 s of every short job on a 2-core
workstation, while the warm actors wait for their first chunk).

`facefusion-ray ray start` runs it beside its Ray (`engine/ray_keeper.py`); the command line
(`cli/launch.py`) hands it a command (`cli/warm_protocol.py`), and the child runs the same
`main` as a process of its own would. A command is refused (and runs in its own process) when
the code on disk or an environment variable read at import differs from what the warm driver
imported, so an edited checkout never runs stale code.

The loop below is single-threaded on purpose: a fork copies only the calling thread, so no
other thread of this process may hold a lock the child needs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import select
import selectors
import signal
import socket
import struct
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from facefusion_ray.cli.warm_protocol import (
    STANDARD_STREAMS,
    close_all,
    code_fingerprint,
    import_time_environment,
    read_request,
    send_message,
)
from facefusion_ray.engine.kept_ray import exec_environment
from facefusion_ray.engine.startup_report import mark_warm_driver

# What a job's driver imports, and what Ray imports only once a driver connects (Ray 2.60):
# all of it before the first fork.
PRELOADED = (
    "facefusion_ray.cli.main",
    "facefusion_ray.engine.driver",
    "facefusion_ray.engine.job",
    "facefusion_ray.pipeline.sequential",
    "ray._common.pydantic_compat",
    "ray.autoscaler.v2.utils",
    "ray.dag.compiled_dag_node",
)
# How often the loop checks that the keeper that started it is still there.
_PARENT_CHECK_SECONDS = 1.0
# On SIGTERM, how long running commands get to end after being passed the signal (the keeper
# waits longer, engine/ray_keeper.py).
STOP_GRACE_SECONDS = 10.0


class WarmDriver:
    """Accepts commands on `listener`, forks one child per command, reports each exit."""

    def __init__(self, listener: socket.socket, parent_pid: int, code: str) -> None:
        self._listener = listener
        self._parent_pid = parent_pid
        self._code = code  # the fingerprint of the code as it was before the imports
        self._environment = import_time_environment(exec_environment())
        self._selector = selectors.DefaultSelector()
        self._children: dict[int, socket.socket] = {}
        self._stopping = False
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)

    def serve(self) -> None:
        signal.set_wakeup_fd(self._wake_write)
        signal.signal(signal.SIGCHLD, lambda number, frame: None)
        signal.signal(signal.SIGTERM, self._stop)
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_read, selectors.EVENT_READ, "wake")
        while not self._stopping and os.getppid() == self._parent_pid:
            for key, _ in self._selector.select(_PARENT_CHECK_SECONDS):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    self._drain_wake()
                else:
                    self._client_spoke(key.fileobj, key.data)  # type: ignore[arg-type]
            self._reap()
        self._stop_children()

    def _stop(self, number: int, frame: object) -> None:
        self._stopping = True

    def _accept(self) -> None:
        connection, _ = self._listener.accept()
        try:
            if _peer_uid(connection) != os.getuid():
                raise ValueError("a connection from another user")
            request, descriptors = read_request(connection)
        except (ValueError, OSError) as error:
            print(f"warm driver: refused {error}", file=sys.stderr, flush=True)
            connection.close()
            return
        refusal = self._refusal(request)
        if refusal:
            close_all(descriptors)
            with contextlib.suppress(OSError):
                send_message(connection, {"refused": refusal})
            connection.close()
            return
        pid = os.fork()
        if pid == 0:
            self._become_command(request, descriptors, connection)
        close_all(descriptors)
        self._children[pid] = connection
        self._selector.register(connection, selectors.EVENT_READ, pid)
        try:
            send_message(connection, {"pid": pid})
        except OSError:
            self._client_spoke(connection, pid)

    def _refusal(self, request: Mapping[str, object]) -> str | None:
        if request.get("executable") != sys.executable:
            return "another Python"
        if request.get("code") != self._code:
            return "the code changed since the warm driver started"
        environment = request.get("environment")
        if not isinstance(environment, dict) or not isinstance(request.get("argv"), list):
            return "a malformed request"
        if import_time_environment(environment) != self._environment:
            return "environment variables read at import differ"
        return None

    def _client_spoke(self, connection: socket.socket, pid: int) -> None:
        """The command line sends nothing after its request: anything readable is its end.
        Its child ends with it, as a process whose parent was killed under it would."""
        with contextlib.suppress(OSError):
            if connection.recv(1):
                return
        self._selector.unregister(connection)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def _reap(self) -> None:
        while self._children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            connection = self._children.pop(pid, None)
            if connection is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(KeyError):
                self._selector.unregister(connection)
            with contextlib.suppress(OSError):
                # A child ended by a signal: the status a shell shows for it.
                send_message(connection, {"exit": code if code >= 0 else 128 - code})
            connection.close()

    def _stop_children(self) -> None:
        """Commands still running get SIGTERM, as they would when their Ray is stopped, and
        their command lines their exit."""
        for pid in self._children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        self._selector.unregister(self._listener)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while self._children and time.monotonic() < deadline:
            self._wait_for_a_signal()
        for pid in list(self._children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        while self._children:
            self._wait_for_a_signal()

    def _wait_for_a_signal(self) -> None:
        readable, _, _ = select.select([self._wake_read], [], [], 0.1)
        if readable:
            self._drain_wake()
        self._reap()

    def _drain_wake(self) -> None:
        """Signals arrived (their handlers ran): empty the pipe that woke the loop."""
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_read, 4096)

    def _become_command(
        self, request: Mapping[str, object], descriptors: list[int], connection: socket.socket
    ) -> None:
        """In the child: drop the loop, take the command line's streams, folder and
        environment, run the command and exit with its code. Never returns."""
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            for number in (signal.SIGCHLD, signal.SIGTERM):
                signal.signal(number, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self._selector.close()
            for open_socket in (self._listener, connection, *self._children.values()):
                open_socket.close()
            os.close(self._wake_read)
            os.close(self._wake_write)
            _adopt_streams(descriptors)
            code = run_command(request)
        finally:
            os._exit(code)


def run_command(request: Mapping[str, object]) -> int:
    """`facefusion-ray ARGV` as the command line's process would have run it."""
    import atexit
    import traceback

    from facefusion_ray.cli.main import run_process

    mark_warm_driver()
    try:
        _take_over(request)
        code = run_process()  # reads sys.argv, as the command line's own process would
    except SystemExit as done:  # argparse's usage errors and --help
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if not isinstance(done.code, int | None):
            print(done.code, file=sys.stderr)
    except OSError as error:  # the command line's folder is gone
        print(f"facefusion-ray: error: {error}", file=sys.stderr)
        code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return code


def _take_over(request: Mapping[str, object]) -> None:
    """The command line's folder, umask, nice value, environment and arguments."""
    argv = [str(word) for word in request["argv"]]  # type: ignore[attr-defined]
    environment = request["environment"]
    os.chdir(str(request["cwd"]))
    os.umask(int(request["umask"]))  # type: ignore[call-overload]
    with contextlib.suppress(OSError, KeyError, TypeError, ValueError):
        # A `nice` command line: its command runs as nicely (raising priority needs rights).
        os.setpriority(os.PRIO_PROCESS, 0, int(request["priority"]))  # type: ignore[call-overload]
    os.environ.clear()
    os.environ.update({str(name): str(value) for name, value in environment.items()})  # type: ignore[attr-defined]
    sys.argv = ["facefusion-ray", *argv]


def _adopt_streams(descriptors: list[int]) -> None:
    """The command line's stdin, stdout and stderr in place of this process's; Python's stream
    objects keep their descriptors, so only stdout's buffering follows the new target."""
    for target, descriptor in zip(STANDARD_STREAMS, descriptors, strict=True):
        os.dup2(descriptor, target)
        os.close(descriptor)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=os.isatty(1))


def _peer_uid(connection: socket.socket) -> int:
    credentials = connection.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
    )
    return struct.unpack("3i", credentials)[1]


def preload() -> None:
    import gc
    import importlib

    for module in PRELOADED:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    # The children share these objects' pages, and no collection of theirs walks them.
    gc.freeze()


def listen(path: Path) -> socket.socket:
    """A socket at `path` only this user can connect to; the path appears once it listens."""
    bound = path.with_name(path.name + ".binding")
    bound.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)
    try:
        listener.bind(str(bound))
    finally:
        os.umask(previous)
    listener.listen(16)
    os.replace(bound, path)
    return listener


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__name__}")
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--parent", type=int, required=True, help="ends when this pid is gone")
    args = parser.parse_args(argv)
    code = code_fingerprint()
    preload()
    listener = listen(args.socket)
    try:
        WarmDriver(listener, args.parent, code).serve()
    finally:
        listener.close()
        args.socket.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
