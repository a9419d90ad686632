"""An `ffmpeg` that keeps a copy of the raw frames crossing its pipes, then behaves as ffmpeg.

FaceFusion 3.8.1 decodes a video through `ffmpeg ... -f rawvideo -` (BGR on stdout) and encodes
its processed frames through `ffmpeg ... -i pipe:0`. Put first on FaceFusion's PATH (see
`FaceFusionOracle.run(tap_frames=...)`), this keeps both streams in `$FRAME_TAP_FOLDER`
(`decoded-N.bgr`, `encoded-N.bgr`, numbered per call), so a test can compare FaceFusion's
processed frames before its encoder touches them. Every other call is the real ffmpeg.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import BinaryIO

BLOCK = 1 << 20


def next_free(folder: Path, kind: str) -> Path:
    for number in itertools.count():
        path = folder / f"{kind}-{number}.bgr"
        if not path.exists():
            return path
    raise AssertionError("unreachable")


def copy_through(source: BinaryIO, destinations: list[BinaryIO]) -> None:
    while block := source.read(BLOCK):
        for destination in destinations:
            destination.write(block)


def main(arguments: list[str]) -> int:
    real = os.environ["FRAME_TAP_FFMPEG"]
    folder = Path(os.environ["FRAME_TAP_FOLDER"])
    folder.mkdir(parents=True, exist_ok=True)
    command = [real, *arguments]
    if arguments and arguments[-1] == "-" and "rawvideo" in arguments:
        with next_free(folder, "decoded").open("wb") as kept:
            process = subprocess.Popen(command, stdout=subprocess.PIPE)
            assert process.stdout is not None
            copy_through(process.stdout, [kept, sys.stdout.buffer])
            return process.wait()
    if "pipe:0" in arguments:
        with next_free(folder, "encoded").open("wb") as kept:
            process = subprocess.Popen(command, stdin=subprocess.PIPE)
            assert process.stdin is not None
            copy_through(sys.stdin.buffer, [kept, process.stdin])
            process.stdin.close()
            return process.wait()
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
