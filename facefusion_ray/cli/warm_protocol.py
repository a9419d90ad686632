"""What crosses the warm driver's socket (`cli/warm_driver.py`), and when a command may run
in a fork of it: the command line sends its command with its stdin, stdout and stderr, folder,
environment and umask; the warm driver answers with the child's pid, then its exit code (one
JSON object a line), or with why it refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import struct
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import facefusion_ray

# Variables a module may read when it is imported (Ray's constants, thread pools, the loader):
# a command whose values differ runs in a process of its own. This project reads its own
# variables when it runs, in the child, from the command's environment.
IMPORT_TIME_VARIABLES = ("RAY_", "OMP_", "OPENBLAS_", "MKL_", "LD_")
IMPORT_TIME_NAMES = ("PYTHONPATH", "PYTHONHOME", "CUDA_VISIBLE_DEVICES")
STANDARD_STREAMS = (0, 1, 2)
# A request: a 4-byte length, then that much JSON; the three descriptors ride on its first part.
_LENGTH = struct.Struct("!I")
_REQUEST_LIMIT = 16 * 1024 * 1024
_REQUEST_TIMEOUT_SECONDS = 10.0


def code_fingerprint(package_folder: Path | None = None) -> str:
    """The package's folder and every Python file's path, size and modification time: what
    decides whether a fork of this process runs the code a fresh one would."""
    folder = package_folder or Path(facefusion_ray.__file__).resolve().parent
    digest = hashlib.sha256(str(folder).encode())
    for root, folders, files in os.walk(folder):
        folders.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                stat = os.stat(os.path.join(root, name))
                digest.update(f"{root}/{name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def import_time_environment(environment: Mapping[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in environment.items()
        if name.startswith(IMPORT_TIME_VARIABLES) or name in IMPORT_TIME_NAMES
    }


def encode_request(argv: Sequence[str]) -> bytes:
    """What the command line sends: its command and everything a process inherits."""
    umask = os.umask(0)
    os.umask(umask)
    request = {
        "argv": list(argv),
        "cwd": os.getcwd(),
        "environment": dict(os.environ),
        "umask": umask,
        "priority": os.getpriority(os.PRIO_PROCESS, 0),
        "executable": sys.executable,
        "code": code_fingerprint(),
    }
    payload = json.dumps(request).encode()
    return _LENGTH.pack(len(payload)) + payload


def read_request(connection: socket.socket) -> tuple[dict[str, object], list[int]]:
    """The request and the descriptors that came with it (closed here if it is malformed)."""
    connection.settimeout(_REQUEST_TIMEOUT_SECONDS)
    data, descriptors, _, _ = socket.recv_fds(connection, 65536, len(STANDARD_STREAMS))
    try:
        if len(data) < _LENGTH.size:
            raise ValueError("a short request")
        (length,) = _LENGTH.unpack_from(data)
        if length > _REQUEST_LIMIT:
            raise ValueError("an oversized request")
        payload = bytearray(data[_LENGTH.size :])
        while len(payload) < length:
            more = connection.recv(length - len(payload))
            if not more:
                raise ValueError("a truncated request")
            payload += more
        request = json.loads(payload)
        if not isinstance(request, dict) or len(descriptors) != len(STANDARD_STREAMS):
            raise ValueError("a request without its command or streams")
    except (ValueError, OSError):
        close_all(descriptors)
        raise
    connection.settimeout(None)
    return request, descriptors


def send_message(connection: socket.socket, message: Mapping[str, object]) -> None:
    connection.sendall(json.dumps(message).encode() + b"\n")


def close_all(descriptors: list[int]) -> None:
    for descriptor in descriptors:
        with contextlib.suppress(OSError):
            os.close(descriptor)
