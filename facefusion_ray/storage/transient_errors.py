"""Which object-store failures may pass if the same request is made again a little later.

A request that could not connect, timed out, was cut off, was throttled (429, SlowDown) or got
a server error (5xx) says nothing about the object: the work that made it can be run again.
Anything else the store answered (no such object, access denied, a bad request) will be
answered the same way again. s3fs turns botocore's answers into OSErrors that keep the
original as their cause, so the whole chain of causes is looked at.
"""

import errno
import functools
from collections.abc import Iterator
from typing import Any

# S3's error codes for "slow down" and "try again", whatever the status says.
_RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
    }
)


@functools.cache
def _store_errors() -> tuple[type[BaseException], tuple[type[BaseException], ...]]:
    """botocore's answer type, and the transport failures: imported on the first error, since
    botocore and aiohttp cost every process ~0.2 s of start-up (one with local files only
    never needs them)."""
    from aiohttp import ClientConnectionError, ClientPayloadError
    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        HTTPClientError,
        IncompleteReadError,
    )

    transport = (
        ConnectionError,  # botocore's: could not connect, connect timeout
        HTTPClientError,  # botocore's: read timeout, connection closed mid-answer
        IncompleteReadError,
        ClientConnectionError,  # aiohttp's, for s3fs
        ClientPayloadError,
        ConnectionResetError,
        ConnectionAbortedError,
        ConnectionRefusedError,
        TimeoutError,
    )
    return ClientError, transport


_TOO_MANY_REQUESTS = 429
_SERVER_ERRORS = range(500, 600)


def is_transient(error: BaseException) -> bool:
    """True when `error`, or an error it came from, is a transport failure, throttling or a
    server error; False for anything the store answered about the request itself."""
    answer_type, transport = _store_errors()
    for link in _chain(error):
        if isinstance(link, answer_type):
            return _retryable_answer(link)
        if isinstance(link, transport):
            return True
        if isinstance(link, OSError) and link.errno == errno.ETIMEDOUT:
            return True
    return False


def _retryable_answer(error: Any) -> bool:
    """`error`: a botocore ClientError."""
    response = error.response or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code.isdigit():  # an answer without a body (HEAD) has its status as its code
        status = int(code)
    return code in _RETRYABLE_CODES or status == _TOO_MANY_REQUESTS or status in _SERVER_ERRORS


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__
