"""The `facefusion-ray` process (the console script, `python -m facefusion_ray`): a command runs
in the kept Ray's warm driver when one runs for this environment (`cli/warm_driver.py`),
else here. This module imports nothing heavy: handing a command over costs ~0.1 s, running it
here ~0.9 s of imports first.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import BinaryIO

from facefusion_ray.cli.warm_protocol import STANDARD_STREAMS, encode_request
from facefusion_ray.engine.kept_ray import find_kept_ray

# Set to 0 to run every command in its own process.
WARM_DRIVER_VARIABLE = "FACEFUSION_RAY_WARM_DRIVER"
# `ray start|status|stop` manage the kept Ray itself: never inside it.
LOCAL_COMMANDS = frozenset({"ray"})
# Signals passed on to the command, as a terminal or a scheduler would send them to it.
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXIT_LOST = 1


def run_process() -> int:
    argv = sys.argv[1:]
    code = run_in_warm_driver(argv)
    if code is not None:
        return code
    from facefusion_ray.cli.main import run_process as run_here

    return run_here()


def run_in_warm_driver(argv: Sequence[str]) -> int | None:
    """The command's exit code when the kept Ray's warm driver ran it; None when it should
    run here (no kept Ray or warm driver, or the warm driver refused it)."""
    if os.environ.get(WARM_DRIVER_VARIABLE) == "0" or runs_here(argv):
        return None
    kept = find_kept_ray()
    if kept is None or not kept.driver_socket:
        return None
    return hand_over(kept.driver_socket, argv)


def runs_here(argv: Sequence[str]) -> bool:
    """The command manages the kept Ray itself (the first word that is not an option)."""
    command = next((word for word in argv if not word.startswith("-")), None)
    return command in LOCAL_COMMANDS


def hand_over(driver_socket: str, argv: Sequence[str]) -> int | None:
    """Run `argv` in the warm driver at `driver_socket` with this process's streams, passing
    it the signals this process gets; its exit code, or None when it did not take it."""
    if not _streams_open():
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(driver_socket)
        socket.send_fds(connection, [encode_request(argv)], list(STANDARD_STREAMS))
        replies = connection.makefile("rb")
        first = _message(replies)
    except OSError:
        connection.close()
        return None
    if "pid" not in first:
        connection.close()
        return None
    with _signals_passed_to(int(first["pid"])):  # type: ignore[call-overload]
        last = _message(replies)
    connection.close()
    if "exit" not in last:
        print("facefusion-ray: error: the warm driver ended before the command", file=sys.stderr)
        return EXIT_LOST
    return int(last["exit"])  # type: ignore[call-overload]


def _message(replies: BinaryIO) -> dict[str, object]:
    try:
        line = replies.readline()
    except OSError:
        return {}
    try:
        message = json.loads(line) if line else {}
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


def _streams_open() -> bool:
    for descriptor in STANDARD_STREAMS:
        try:
            os.fstat(descriptor)
        except OSError:
            return False
    return True


@contextlib.contextmanager
def _signals_passed_to(pid: int) -> Iterator[None]:
    def pass_on(number: int, frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, number)

    previous = {number: signal.signal(number, pass_on) for number in FORWARDED_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
