"""An HTTP proxy in front of an S3 endpoint that counts the body bytes it sends back to clients,
per object path: point a client's endpoint at `proxy.endpoint_url` and every read it makes
(s3fs requests and signed URLs alike, since a URL is signed for the endpoint it names) is
counted. The Host header is passed through unchanged, so signatures stay valid.
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_COPY_BYTES = 64 * 1024
_HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection"})


class ByteCounts:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes_by_path: Counter[str] = Counter()
        self.requests_by_path: Counter[str] = Counter()

    def add(self, path: str, sent: int) -> None:
        with self._lock:
            self.bytes_by_path[path] += sent
            self.requests_by_path[path] += 1

    def of(self, key: str) -> int:
        """Bytes sent for requests whose path ends with `key` (query strings aside)."""
        with self._lock:
            return sum(sent for path, sent in self.bytes_by_path.items() if path.endswith(key))

    def reset(self) -> None:
        with self._lock:
            self.bytes_by_path.clear()
            self.requests_by_path.clear()


class _Proxy(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client closing its connection early (ffmpeg done with a range) is normal

    def __init__(self, upstream: str, counts: ByteCounts) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.counts = counts


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Proxy

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            self.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in _HOP_HEADERS:
                    self.send_header(key, value)
            if response.getheader("Content-Length") is None:
                self.close_connection = True  # the body ends when the connection does
            self.end_headers()
            sent = 0
            try:
                while self.command != "HEAD" and (block := response.read(_COPY_BYTES)):
                    self.wfile.write(block)
                    sent += len(block)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client stopped reading: so does the count
            self.server.counts.add(urlsplit(self.path).path, sent)
        finally:
            upstream.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward


@contextmanager
def counting_proxy(upstream_endpoint: str) -> Iterator[tuple[str, ByteCounts]]:
    """(endpoint URL of the proxy, its counts) while the proxy runs."""
    counts = ByteCounts()
    server = _Proxy(upstream_endpoint, counts)
    thread = threading.Thread(target=server.serve_forever, name="byte-proxy", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}", counts
    finally:
        server.shutdown()
        server.server_close()
