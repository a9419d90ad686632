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
_COPY_BYTES = 64 * 1024


@dataclass
class TrafficCounts:
    """What crossed the proxy, by (bucket, operation); operations are GET (an object's bytes),
    LIST (a listing: a GET with no key), HEAD, PUT, POST and DELETE."""

    response_bytes: Counter[tuple[str, str]] = field(default_factory=Counter)
    request_bytes: Counter[tuple[str, str]] = field(default_factory=Counter)
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    writes_by_key: Counter[tuple[str, str]] = field(default_factory=Counter)
    reads_by_key: Counter[tuple[str, str]] = field(default_factory=Counter)  # GET bytes

    def bytes_read(self, bucket: str) -> int:
        """Object bytes the server sent for `bucket` (whole objects and ranges)."""
        return self.response_bytes[(bucket, "GET")]

    def bytes_read_of(self, key: str) -> int:
        """Object bytes the server sent for keys ending in `key`, in any bucket."""
        return sum(sent for (_, name), sent in self.reads_by_key.items() if name.endswith(key))

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
        self._lock = threading.Condition()
        self._active = 0
        self.counts = TrafficCounts()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def snapshot(self, settled: bool = False) -> TrafficCounts:
        """The counts so far; `settled` waits for the requests being answered to be counted
        (a client can read a whole answer before its handler has counted it)."""
        with self._lock:
            if settled:
                self._lock.wait_for(lambda: self._active == 0, timeout=_UPSTREAM_TIMEOUT_SECONDS)
            return TrafficCounts(
                Counter(self.counts.response_bytes),
                Counter(self.counts.request_bytes),
                Counter(self.counts.requests),
                Counter(self.counts.writes_by_key),
                Counter(self.counts.reads_by_key),
            )

    def started(self) -> None:
        with self._lock:
            self._active += 1

    def record(
        self, bucket: str, operation: str, key: str, sent: int, received: int, status: int
    ) -> None:
        with self._lock:
            self._active -= 1
            self._lock.notify_all()
            self.counts.requests[(bucket, operation)] += 1
            self.counts.request_bytes[(bucket, operation)] += sent
            if status < 400:
                self.counts.response_bytes[(bucket, operation)] += received
                if operation == "PUT" and key:
                    self.counts.writes_by_key[(bucket, key)] += 1
                if operation == "GET":
                    self.counts.reads_by_key[(bucket, key)] += received

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(ForwardingHandler):
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


class _QuietServer(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops connections when a cluster's actors, the
    # driver and ffmpeg's range readers connect at once (seen as connect timeouts).
    request_queue_size = 256

    def handle_error(self, request: object, client_address: object) -> None:
        """A client closing its connection early (ffmpeg done with a range) is normal."""


@contextmanager
def counting_proxy(upstream: str) -> Iterator[ByteCountingProxy]:
    proxy = ByteCountingProxy(upstream)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


class ForwardingHandler(BaseHTTPRequestHandler):
    owner: ByteCountingProxy
    # Keep-alive towards the clients where the upstream answer states its length.
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._forward()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    def log_message(self, format: str, *args: object) -> None:
        """Silent: request lines carry presigned URLs, whose signatures stay out of logs."""

    def _forward(self) -> None:
        """One request upstream; the answer is streamed back and counted as far as the client
        reads it (ffmpeg asks for an open-ended range and hangs up once it has its frames)."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {
            name: value for name, value in self.headers.items() if name.lower() not in _HOP_HEADERS
        }
        upstream = self.owner.upstream_connection()
        sent = 0
        status = 502
        self.owner.started()
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            status = response.status
            self.send_response(status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in _HOP_HEADERS:
                    self.send_header(name, value)
            if response.getheader("Content-Length") is None:
                self.close_connection = True  # the body ends when the connection does
            self.end_headers()
            sent = self._copy_body(response)
        finally:
            upstream.close()
            bucket, key = bucket_and_key(self.path)
            operation = "LIST" if self.command == "GET" and not key else self.command
            self.owner.record(bucket, operation, key, len(body), sent, status)

    def _copy_body(self, response: http.client.HTTPResponse) -> int:
        sent = 0
        if self.command == "HEAD":
            return sent
        try:
            while block := response.read(_COPY_BYTES):
                self.wfile.write(block)
                sent += len(block)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped reading: so does the count
        return sent


def bucket_and_key(path: str) -> tuple[str, str]:
    """The bucket and key of a path-style request (/bucket/key?query): the proxy listens on a
    loopback IP, where clients cannot use virtual-host style."""
    bucket, _, key = urlsplit(path).path.lstrip("/").partition("/")
    return bucket, key
