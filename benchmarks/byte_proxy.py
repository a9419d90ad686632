"""A byte-counting HTTP reverse proxy for an S3 server, so a benchmark can count the bytes a job
reads from the object store.

Clients are pointed at the proxy (its `endpoint_url`); every request is forwarded to the server
with its Host header unchanged, so S3 signatures (headers and presigned URLs alike) stay valid.
Each exchange is counted by bucket and operation: bytes the server sent back, bytes the client
sent, and how often each object key was written (a segment written twice is a chunk rendered
twice).
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Hop-by-hop headers are the proxy's own business (RFC 9110, 7.6.1); Expect is answered here.
_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
)
_UPSTREAM_TIMEOUT_SECONDS = 120.0


@dataclass
class TrafficCounts:
    """What crossed the proxy, by (bucket, operation); operations are GET (an object's bytes),
    LIST (a listing: a GET with no key), HEAD, PUT, POST and DELETE."""

    response_bytes: Counter[tuple[str, str]] = field(default_factory=Counter)
    request_bytes: Counter[tuple[str, str]] = field(default_factory=Counter)
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    writes_by_key: Counter[tuple[str, str]] = field(default_factory=Counter)

    def bytes_read(self, bucket: str) -> int:
        """Object bytes the server sent for `bucket` (whole objects and ranges)."""
        return self.response_bytes[(bucket, "GET")]

    def as_dict(self) -> dict[str, dict[str, dict[str, int]]]:
        table: dict[str, dict[str, dict[str, int]]] = {}
        for (bucket, operation), count in sorted(self.requests.items()):
            table.setdefault(bucket, {})[operation] = {
                "requests": count,
                "response_bytes": self.response_bytes[(bucket, operation)],
                "request_bytes": self.request_bytes[(bucket, operation)],
            }
        return table


class ByteCountingProxy:
    """Forwards to `upstream` (http://host:port) from a loopback port of its own."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname is not None and parts.port is not None, upstream
        self._upstream = (parts.hostname, parts.port)
        self._lock = threading.Lock()
        self.counts = TrafficCounts()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def snapshot(self) -> TrafficCounts:
        with self._lock:
            return TrafficCounts(
                Counter(self.counts.response_bytes),
                Counter(self.counts.request_bytes),
                Counter(self.counts.requests),
                Counter(self.counts.writes_by_key),
            )

    def record(
        self, bucket: str, operation: str, key: str, sent: int, received: int, status: int
    ) -> None:
        with self._lock:
            self.counts.requests[(bucket, operation)] += 1
            self.counts.request_bytes[(bucket, operation)] += sent
            if status < 400:
                self.counts.response_bytes[(bucket, operation)] += received
                if operation == "PUT" and key:
                    self.counts.writes_by_key[(bucket, key)] += 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(_ForwardingHandler):
            owner = proxy

        return Handler

    def upstream_connection(self) -> http.client.HTTPConnection:
        host, port = self._upstream
        return http.client.HTTPConnection(host, port, timeout=_UPSTREAM_TIMEOUT_SECONDS)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def counting_proxy(upstream: str) -> Iterator[ByteCountingProxy]:
    proxy = ByteCountingProxy(upstream)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


class _ForwardingHandler(BaseHTTPRequestHandler):
    owner: ByteCountingProxy
    # Keep-alive towards the clients: every answer carries its Content-Length.
    protocol_version = "HTTP/1.1"
    _upstream: http.client.HTTPConnection | None = None

    def do_GET(self) -> None:
        self._forward()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    def log_message(self, format: str, *args: object) -> None:
        """Silent: request lines carry presigned URLs, whose signatures stay out of logs."""

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {
            name: value for name, value in self.headers.items() if name.lower() not in _HOP_HEADERS
        }
        status, reason, answer_headers, payload = self._exchange(body, headers)
        bucket, key = bucket_and_key(self.path)
        operation = "LIST" if self.command == "GET" and not key else self.command
        self.owner.record(bucket, operation, key, len(body), len(payload), status)
        self.send_response(status, reason)
        for name, value in answer_headers:
            if name.lower() not in _HOP_HEADERS and name.lower() != "content-length":
                self.send_header(name, value)
        if self.command == "HEAD":
            # A HEAD answer states the object's length without sending it.
            declared = dict((name.lower(), value) for name, value in answer_headers)
            self.send_header("Content-Length", declared.get("content-length", "0"))
        else:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _exchange(
        self, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """One request upstream on this client's connection (opened again once if it was
        closed under us)."""
        for attempt in range(2):
            if self._upstream is None:
                self._upstream = self.owner.upstream_connection()
            try:
                self._upstream.request(self.command, self.path, body=body, headers=headers)
                response = self._upstream.getresponse()
                payload = response.read()
                return response.status, response.reason, response.getheaders(), payload
            except (http.client.HTTPException, ConnectionError):
                self._upstream.close()
                self._upstream = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def bucket_and_key(path: str) -> tuple[str, str]:
    """The bucket and key of a path-style request (/bucket/key?query): the proxy listens on a
    loopback IP, where clients cannot use virtual-host style."""
    bucket, _, key = urlsplit(path).path.lstrip("/").partition("/")
    return bucket, key
