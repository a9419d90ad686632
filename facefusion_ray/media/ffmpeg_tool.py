"""Locating and running the bundled ffmpeg binary (there is no system ffmpeg or ffprobe)."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from typing import IO

import imageio_ffmpeg

from facefusion_ray.errors import MediaError
from facefusion_ray.media.process_cpu import CHILD_CPU, OTHER, usage_seconds
from facefusion_ray.media.remote_media import without_urls

_LOG_PREFIX = re.compile(r"^(\[[^\]]*@ 0x[0-9a-f]+\]\s*)+")
# Lines ffmpeg prints after the real cause; they never explain what went wrong.
_NOISE = (
    "last message repeated",
    "conversion failed",
    "terminating thread with return code",
    "task finished with error code",
    "error closing file",
    "error writing trailer",
    "error opening output file",
    # An encoder that cannot open (e.g. NVENC without a GPU) names the cause before these.
    "nothing was written into output file",
    "could not open encoder before eof",
    "error while opening encoder",
    "error sending frames to consumers",
    "at least one output file must be specified",
    "exiting normally",
)


@functools.cache
def ffmpeg_executable() -> str:
    """Path of the ffmpeg binary shipped with imageio-ffmpeg (`IMAGEIO_FFMPEG_EXE` overrides it)."""
    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_command(*args: str) -> list[str]:
    """An ffmpeg argv that never reads the terminal and prints no banner."""
    return [ffmpeg_executable(), "-nostdin", "-hide_banner", *args]


def meaningful_stderr_line(stderr: str) -> str:
    """The last stderr line that explains a failure, without ffmpeg's `[ctx @ 0x..]` prefixes."""
    fallback = ""
    for raw_line in reversed(stderr.splitlines()):
        line = _LOG_PREFIX.sub("", raw_line.strip()).strip()
        if not line:
            continue
        fallback = fallback or line
        if not any(noise in line.lower() for noise in _NOISE):
            return line
    return fallback or "ffmpeg failed without a message"


def run_ffmpeg(args: Sequence[str], failure: str) -> str:
    """Run ffmpeg to completion and return its stderr; raise MediaError(`failure: cause`) on error.

    stderr goes to a temporary file rather than a pipe so a chatty ffmpeg can never block.
    """
    process = FfmpegProcess(args)
    try:
        return_code = process.wait()
        stderr = process.stderr_text()
    finally:
        process.close()
    if return_code != 0:
        raise MediaError(f"{failure}: {meaningful_stderr_line(stderr)}")
    return stderr


class FfmpegProcess:
    """A running ffmpeg whose stderr is captured in a temporary file.

    `args` excludes the executable and the standard `-nostdin -hide_banner` flags. The child
    is reaped with `os.wait4`, so its CPU time is known (`cpu_seconds`) and filed in
    `CHILD_CPU` under `kind` (process_cpu.DECODE, ENCODE or OTHER).
    `hidden` maps the signed URLs among the inputs to the names its stderr shows instead.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        stdin: int | IO[bytes] = subprocess.DEVNULL,
        stdout: int | IO[bytes] = subprocess.DEVNULL,
        kind: str = OTHER,
        hidden: Mapping[str, str] | None = None,
    ) -> None:
        self.kind = kind
        self._hidden = dict(hidden or {})
        # CPU seconds (user + system) of ffmpeg, known once it has been reaped.
        self.cpu_seconds: float | None = None
        # Lives as long as this object; close() releases it.
        self._stderr_file = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                ffmpeg_command(*args), stdin=stdin, stdout=stdout, stderr=self._stderr_file
            )
        except OSError as error:
            self._stderr_file.close()
            raise MediaError(f"cannot start ffmpeg ({ffmpeg_executable()}): {error}") from error

    def wait(self) -> int:
        if self.process.returncode is None:
            self._reap(blocking=True)
        return self.process.returncode

    def stop(self) -> None:
        """Kill ffmpeg if it is still running and reap it."""
        if self.process.returncode is None and not self._reap(blocking=False):
            # Not Popen.kill: its poll() could reap the child and lose its resource usage.
            # An unreaped child keeps its pid, so the signal cannot reach another process.
            os.kill(self.process.pid, signal.SIGKILL)
            self._reap(blocking=True)

    def _reap(self, *, blocking: bool) -> bool:
        """Collect ffmpeg's exit status and CPU time; False if it is still running."""
        try:
            pid, status, usage = os.wait4(self.process.pid, 0 if blocking else os.WNOHANG)
        except ChildProcessError:  # reaped by someone else: the status is all there is
            self.process.wait()
            return True
        if pid == 0:
            return False
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self.cpu_seconds = usage_seconds(usage)
        CHILD_CPU.add(self.kind, self.cpu_seconds)
        return True

    def stderr_text(self) -> str:
        self._stderr_file.seek(0)
        text = self._stderr_file.read().decode("utf-8", errors="replace")
        return without_urls(text, self._hidden)

    def failure_reason(self) -> str:
        return meaningful_stderr_line(self.stderr_text())

    def close(self) -> None:
        """Stop ffmpeg, close our ends of its pipes and drop the captured stderr."""
        self.stop()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                # Closing a stdin pipe flushes it, which fails once ffmpeg is gone.
                with contextlib.suppress(OSError):
                    stream.close()
        self._stderr_file.close()
