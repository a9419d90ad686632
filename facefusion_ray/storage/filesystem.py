"""Local folders and object stores (s3://...) opened by URL through fsspec.

S3-compatible stores are configured the standard AWS way: AWS_ENDPOINT_URL(_S3), AWS_PROFILE,
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and AWS_DEFAULT_REGION (never region in client_kwargs:
bucket creation breaks with it), plus explicit fsspec storage options given as KEY=VALUE strings,
where a dotted key such as `client_kwargs.endpoint_url` fills a nested argument.

Every failure becomes a one-line `StorageError` that names the location and carries no credential.
Connect timeouts and retries are kept low so that an unreachable store fails within seconds.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem

from facefusion_ray.atomic_files import temporary_file_beside
from facefusion_ray.storage.errors import ObjectNotFoundError, StorageError, TransientStorageError
from facefusion_ray.storage.s3_clients import shared_s3_filesystem
from facefusion_ray.storage.transient_errors import is_transient

# Files of a shared store stay readable by the other accounts that use it (mkstemp gives 0600).
SHARED_FILE_MODE = 0o644

S3_PROTOCOLS = frozenset({"s3", "s3a"})
_LOCAL_PROTOCOLS = frozenset({"file", "local"})
_S3_CONNECT_TIMEOUT_SECONDS = 3
_S3_READ_TIMEOUT_SECONDS = 60
# botocore's own retry count, on top of the first attempt; s3fs's outer retry loop is disabled
# so that the attempts do not multiply (defaults: 5 x 5 attempts, ~10 s for a refused port).
_S3_BOTOCORE_RETRIES = 1
_S3FS_ATTEMPTS = 1
_CHUNK_BYTES = 1024 * 1024

_CREDENTIAL_ENVIRONMENT = ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN")
_CREDENTIAL_OPTION = re.compile(
    r"(?i)^(key|secret|token|password|username|session_token|access_key|secret_key"
    r"|aws_access_key_id|aws_secret_access_key|aws_session_token|account_key|sas_token)$"
)
# `name=value`, `name: value` and `'name': b'value'` (dict reprs in third-party debug logs);
# the `b` is a bytes prefix only before a quote (a signature may start with a `b`).
_CREDENTIAL_ASSIGNMENT = re.compile(
    r"(?i)\b([\w.-]*(?:secret|token|password|signature|credential|access_?key)[\w.-]*)"
    r"(['\"]?\s*[=:]\s*(?:b(?=['\"]))?)(['\"]?)[^\s&'\",;]+"
)
_URL_USER_INFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")
_MIN_SECRET_LENGTH = 4
_registered_secrets: set[str] = set()


def redact(text: str) -> str:
    """`text` without credentials: known secret values, URL user info, `secret=...` pairs."""
    secrets = {os.environ.get(name, "") for name in _CREDENTIAL_ENVIRONMENT} | _registered_secrets
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _MIN_SECRET_LENGTH:
            text = text.replace(secret, "***")
    text = _URL_USER_INFO.sub(r"\1***@", text)
    return _CREDENTIAL_ASSIGNMENT.sub(r"\1\2\3***", text)


def parse_storage_options(items: Iterable[str]) -> dict[str, str]:
    """["key=value", "client_kwargs.endpoint_url=http://host:8333"] -> {key: value}."""
    options: dict[str, str] = {}
    for position, item in enumerate(items, start=1):
        key, separator, value = item.partition("=")
        key = key.strip()
        if not separator or not key or not all(key.split(".")):
            # The item is not echoed: it may be a credential typed without its key.
            raise StorageError(
                f"storage option #{position} is not KEY=VALUE "
                "(example: client_kwargs.endpoint_url=http://127.0.0.1:8333)"
            )
        options[key] = value
    return options


def open_filesystem(
    url: str, storage_options: Mapping[str, str] | None = None
) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem holding `url` and the root path inside it (no trailing slash).

    A plain path or file:// URL is a local folder; anything else goes to fsspec by protocol.
    Opening does not contact the store; the first read or write does.
    """
    protocol = _protocol_of(url)
    options = _nested_options(storage_options or {})
    if protocol in _LOCAL_PROTOCOLS:
        local = url.split("://", 1)[1] if "://" in url else url
        return LocalFileSystem(**options), os.path.abspath(os.path.expanduser(local))
    if protocol in S3_PROTOCOLS:
        options = _with_s3_defaults(options)
    try:
        if protocol in S3_PROTOCOLS:
            filesystem = shared_s3_filesystem(
                protocol, options, lambda: fsspec.filesystem(protocol, **options)
            )
        else:
            filesystem = fsspec.filesystem(protocol, **options)
    except (ImportError, ValueError, TypeError) as error:
        raise StorageError(redact(f"cannot open store {url}: {_first_line(error)}")) from None
    if protocol in S3_PROTOCOLS:
        filesystem.retries = _S3FS_ATTEMPTS
    root = filesystem._strip_protocol(url).rstrip("/")
    if not root:
        raise StorageError(redact(f"store URL {url} names no bucket or folder"))
    return filesystem, root


def is_local(filesystem: fsspec.AbstractFileSystem) -> bool:
    return isinstance(filesystem, LocalFileSystem)


def join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


def describe_location(filesystem: fsspec.AbstractFileSystem, path: str) -> str:
    """A URL for messages, e.g. `s3://bucket/key (endpoint http://host:8333)`, redacted."""
    if is_local(filesystem):
        return path
    protocol = filesystem.protocol if isinstance(filesystem.protocol, str) else None
    name = protocol or filesystem.protocol[0]
    described = f"{name}://{path}"
    endpoint = _endpoint_of(filesystem)
    if endpoint:
        described += f" (endpoint {endpoint})"
    return redact(described)


def exists(filesystem: fsspec.AbstractFileSystem, path: str) -> bool:
    with translated_errors(filesystem, path, "cannot check"):
        return bool(filesystem.exists(path))


def object_size(filesystem: fsspec.AbstractFileSystem, path: str) -> int:
    with translated_errors(filesystem, path, "cannot stat"):
        return int(filesystem.size(path))


def list_files(filesystem: fsspec.AbstractFileSystem, prefix: str) -> list[str]:
    """Every file below `prefix`, as paths usable with this filesystem; [] when there is none."""
    with translated_errors(filesystem, prefix, "cannot list"):
        try:
            return sorted(filesystem.find(prefix))
        except FileNotFoundError:
            return []


def read_bytes(filesystem: fsspec.AbstractFileSystem, path: str) -> bytes:
    """The whole object; raises ObjectNotFoundError when it does not exist."""
    with translated_errors(filesystem, path, "cannot read"):
        return bytes(filesystem.cat_file(path))


@contextmanager
def open_for_reading(filesystem: fsspec.AbstractFileSystem, path: str) -> Iterator[BinaryIO]:
    with translated_errors(filesystem, path, "cannot read"), filesystem.open(path, "rb") as stream:
        yield stream


def sha256_of_object(filesystem: fsspec.AbstractFileSystem, path: str) -> str:
    """Hash an object by streaming it, without keeping a local copy."""
    digest = hashlib.sha256()
    with open_for_reading(filesystem, path) as stream:
        for block in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def download(filesystem: fsspec.AbstractFileSystem, path: str, destination: Path) -> None:
    """Copy an object to a local file (which the caller keeps private until it is verified)."""
    with translated_errors(filesystem, path, "cannot download"):
        filesystem.get_file(path, str(destination))


def put_atomic(filesystem: fsspec.AbstractFileSystem, local_path: Path, remote_path: str) -> None:
    """Readers see the old object or the whole new one, never a partial file.

    Local folders: copy to a temporary name beside the target, then rename. Object stores: one
    PUT (s3fs switches to a multipart upload above 100 MB, which also appears atomically).
    """
    with translated_errors(filesystem, remote_path, "cannot write"):
        if is_local(filesystem):
            with temporary_file_beside(Path(remote_path), SHARED_FILE_MODE) as temporary:
                shutil.copyfile(local_path, temporary)
                os.replace(temporary, remote_path)
        else:
            filesystem.put_file(str(local_path), remote_path)


def put_bytes_atomic(
    filesystem: fsspec.AbstractFileSystem, payload: bytes, remote_path: str
) -> None:
    with translated_errors(filesystem, remote_path, "cannot write"):
        if is_local(filesystem):
            with temporary_file_beside(Path(remote_path), SHARED_FILE_MODE) as temporary:
                temporary.write_bytes(payload)
                os.replace(temporary, remote_path)
        else:
            filesystem.pipe_file(remote_path, payload)


def remove(filesystem: fsspec.AbstractFileSystem, path: str) -> None:
    with translated_errors(filesystem, path, "cannot delete"), suppress(FileNotFoundError):
        filesystem.rm_file(path)


@contextmanager
def translated_errors(
    filesystem: fsspec.AbstractFileSystem, path: str, action: str
) -> Iterator[None]:
    """Turn transport and filesystem errors into one-line, redacted StorageErrors (a
    TransientStorageError for a failure that may pass when the request is made again)."""
    try:
        yield
    except StorageError:
        raise
    except FileNotFoundError:
        location = describe_location(filesystem, path)
        raise ObjectNotFoundError(f"{action} {location}: no such object") from None
    except _transport_errors() as error:
        location = describe_location(filesystem, path)
        kind = TransientStorageError if is_transient(error) else StorageError
        raise kind(redact(f"{action} {location}: {_first_line(error)}")) from None


def _transport_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError]
    try:
        from botocore.exceptions import BotoCoreError, ClientError

        errors += [BotoCoreError, ClientError]
    except ImportError:
        pass
    try:
        from aiohttp import ClientError as HttpClientError

        errors.append(HttpClientError)
    except ImportError:
        pass
    return tuple(errors)


def _protocol_of(url: str) -> str:
    if "://" not in url:
        return "file"
    return url.split("://", 1)[0].lower()


def _nested_options(flat: Mapping[str, str]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted_key, raw_value in flat.items():
        *parents, leaf = dotted_key.split(".")
        if _CREDENTIAL_OPTION.match(leaf):
            _registered_secrets.add(raw_value)
            value: Any = raw_value
        else:
            value = _typed_value(raw_value)
        branch = nested
        for parent in parents:
            child = branch.setdefault(parent, {})
            if not isinstance(child, dict):
                raise StorageError(f"storage option {dotted_key} conflicts with option {parent}")
            branch = child
        if isinstance(branch.get(leaf), dict):
            raise StorageError(f"storage option {dotted_key} conflicts with its dotted sub-options")
        branch[leaf] = value
    return nested


def _typed_value(text: str) -> Any:
    """fsspec options are typed (anon=true, config_kwargs.connect_timeout=3)."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if re.fullmatch(r"[+-]?\d+", lowered):
        return int(lowered)
    if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?", lowered):
        return float(lowered)
    return text


def _with_s3_defaults(options: dict[str, Any]) -> dict[str, Any]:
    configured = dict(options)
    # Cached listings would hide other processes' writes (the lock file); fsspec's instance
    # cache would keep old credentials (s3_clients shares instances instead).
    configured.setdefault("skip_instance_cache", True)
    configured.setdefault("use_listings_cache", False)
    config = dict(configured.get("config_kwargs") or {})
    config.setdefault("connect_timeout", _S3_CONNECT_TIMEOUT_SECONDS)
    config.setdefault("read_timeout", _S3_READ_TIMEOUT_SECONDS)
    # Signed URLs (ranged reads of targets) use SigV4 too, not botocore's SigV2 default for them.
    config.setdefault("signature_version", "s3v4")
    if "AWS_MAX_ATTEMPTS" not in os.environ and "AWS_RETRY_MODE" not in os.environ:
        config.setdefault("retries", {"max_attempts": _S3_BOTOCORE_RETRIES, "mode": "standard"})
    configured["config_kwargs"] = config
    return configured


def _endpoint_of(filesystem: fsspec.AbstractFileSystem) -> str | None:
    explicit = getattr(filesystem, "endpoint_url", None)
    client_kwargs = getattr(filesystem, "client_kwargs", None) or {}
    return (
        explicit
        or client_kwargs.get("endpoint_url")
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def object_etag(info: Mapping[str, Any]) -> str:
    """An object's ETag from its metadata (`filesystem.info`), unquoted; "" when it has none."""
    return str(info.get("ETag") or info.get("etag") or "").strip('"')
