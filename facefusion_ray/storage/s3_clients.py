"""One S3 filesystem per process, storage options and AWS environment.

A new s3fs instance builds its own botocore client: about 20 MiB of service models and a
noticeable share of a second, paid for every call of a catalog driver when instances are not
shared. fsspec's own instance cache cannot be used: it keys on the options alone, so a process
whose AWS environment changed (other keys in the credentials file, another profile) would keep
signing with the old credentials. Here the key also holds a digest of that environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec

_MAX_CLIENTS = 8
_lock = threading.Lock()
_clients: OrderedDict[str, fsspec.AbstractFileSystem] = OrderedDict()


def shared_s3_filesystem(
    protocol: str, options: dict[str, Any], build: Callable[[], fsspec.AbstractFileSystem]
) -> fsspec.AbstractFileSystem:
    """The filesystem `build()` makes for these options, made once while the AWS environment of
    this process stays the same; the least recently used of more than eight are dropped."""
    key = _client_key(protocol, options)
    with _lock:
        if key in _clients:
            _clients.move_to_end(key)
            return _clients[key]
    filesystem = build()
    with _lock:
        _clients[key] = filesystem
        while len(_clients) > _MAX_CLIENTS:
            _clients.popitem(last=False)
    return filesystem


def _client_key(protocol: str, options: dict[str, Any]) -> str:
    described = json.dumps(
        [os.getpid(), protocol, options, _aws_environment()], sort_keys=True, default=str
    )
    return hashlib.sha256(described.encode()).hexdigest()


def _aws_environment() -> list[object]:
    """What botocore reads credentials and settings from: AWS_* variables and the state of the
    shared credentials and config files (their content changes their size or time)."""
    variables = sorted(
        (name, value) for name, value in os.environ.items() if name.startswith("AWS_")
    )
    files = []
    for variable, default in (
        ("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
        ("AWS_CONFIG_FILE", "~/.aws/config"),
    ):
        path = Path(os.environ.get(variable, default)).expanduser()
        try:
            status = path.stat()
        except OSError:
            files.append((str(path), None))
            continue
        files.append((str(path), status.st_mtime_ns, status.st_size))
    return [variables, files]
