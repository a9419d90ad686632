"""Headless Chromium driven through its DevTools protocol over a pipe (no extra packages).

Chromium reads protocol messages from fd 3 and writes to fd 4, each a JSON text ended by a
NUL byte (`--remote-debugging-pipe`); a shell `exec` puts our pipes there.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
MISSING_REASON = (
    "needs Chromium (Debian: apt-get install -y chromium, as root); .ci/run installs it"
)


def chromium_executable() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class DevToolsError(RuntimeError):
    pass


class Chromium:
    """One headless browser with one page; `evaluate` runs JavaScript in it."""

    def __init__(self, executable: str, profile: Path, log: Path) -> None:
        arguments = [
            "--headless",
            "--no-sandbox",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "--autoplay-policy=no-user-gesture-required",
            "--mute-audio",
            "--no-first-run",
            "--disable-gpu",
            # file:// pages may draw their own videos into a canvas (the test reads pixels).
            "--allow-file-access-from-files",
            "--disable-web-security",
            "--window-size=1400,1000",
            "about:blank",
        ]
        self._log = log.open("wb")
        self._process = subprocess.Popen(
            ["sh", "-c", 'exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null', executable, *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self._answers: dict[int, dict[str, Any]] = {}
        self._condition = threading.Condition()
        self._next_id = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        self._session = attached["sessionId"]

    def _read(self) -> None:
        assert self._process.stdout is not None
        buffer = b""
        while chunk := self._process.stdout.read1(1 << 16):
            buffer += chunk
            while b"\0" in buffer:
                message, buffer = buffer.split(b"\0", 1)
                parsed = json.loads(message)
                if "id" in parsed:
                    with self._condition:
                        self._answers[parsed["id"]] = parsed
                        self._condition.notify_all()
        with self._condition:
            self._condition.notify_all()

    def call(
        self, method: str, params: dict[str, Any] | None = None, timeout: float = 60.0, page=False
    ) -> dict[str, Any]:
        assert self._process.stdin is not None
        with self._condition:
            self._next_id += 1
            number = self._next_id
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if page:
            message["sessionId"] = self._session
        self._process.stdin.write(json.dumps(message).encode() + b"\0")
        self._process.stdin.flush()
        with self._condition:
            if not self._condition.wait_for(
                lambda: number in self._answers or self._process.poll() is not None, timeout
            ):
                raise DevToolsError(f"{method}: no answer in {timeout} s")
            answer = self._answers.pop(number, None)
        if answer is None:
            raise DevToolsError(f"{method}: Chromium exited ({self._process.returncode})")
        if "error" in answer:
            raise DevToolsError(f"{method}: {answer['error']}")
        return answer["result"]

    def open(self, url: str, ready: str = "document.readyState === 'complete'") -> None:
        self.call("Page.navigate", {"url": url}, page=True)
        self.wait_for(ready, timeout=30)

    def evaluate(self, expression: str, timeout: float = 60.0) -> Any:
        """The value of `expression` (promises are awaited); a thrown error is raised here."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            timeout=timeout,
            page=True,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise DevToolsError(f"page script failed: {text}")
        return result["result"].get("value")

    def wait_for(self, condition: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"Boolean({condition})"):
            if time.monotonic() > deadline:
                raise DevToolsError(f"timed out waiting for {condition}")
            time.sleep(0.05)

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", {"format": "png"}, page=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with suppress(DevToolsError):
            self.call("Browser.close", timeout=10)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()


@contextmanager
def headless_chromium(executable: str, folder: Path) -> Iterator[Chromium]:
    folder.mkdir(parents=True, exist_ok=True)
    browser = Chromium(executable, folder / "profile", folder / "chromium.log")
    try:
        yield browser
    finally:
        browser.close()
