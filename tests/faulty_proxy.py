"""A byte-counting proxy (benchmarks/byte_proxy.py) that answers chosen requests with an S3
error instead of forwarding them: a store that throttles, fails or refuses, on demand."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from benchmarks.byte_proxy import ByteCountingProxy, ForwardingHandler, bucket_and_key


@dataclass
class Fault:
    """Answer `method` requests for keys matching `key` with `status` and S3 error `code`,
    the first `times` of them (None: all)."""

    method: str
    key: str
    status: int
    code: str
    times: int | None = None
    answered: int = 0

    def applies(self, method: str, key: str) -> bool:
        if method != self.method or not re.search(self.key, key):
            return False
        return self.times is None or self.answered < self.times


class FaultyProxy(ByteCountingProxy):
    def __init__(self, upstream: str, faults: list[Fault]) -> None:
        self.faults = faults
        self._faults_lock = threading.Lock()
        super().__init__(upstream)

    def fault_for(self, method: str, path: str) -> Fault | None:
        _, key = bucket_and_key(path)
        with self._faults_lock:
            for fault in self.faults:
                if fault.applies(method, key):
                    fault.answered += 1
                    return fault
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(ForwardingHandler):
            owner = proxy

            def _forward(self) -> None:
                fault = proxy.fault_for(self.command, self.path)
                if fault is None:
                    super()._forward()
                    return
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = (
                    f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{fault.code}</Code>'
                    f"<Message>{fault.code} (injected by the test)</Message></Error>"
                ).encode()
                self.send_response(fault.status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

        return Handler


@contextmanager
def faulty_proxy(upstream: str, faults: list[Fault]) -> Iterator[FaultyProxy]:
    proxy = FaultyProxy(upstream, faults)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
