"""Decoding and encoding in threads beside the frame loop, against the real bundled ffmpeg:
errors surface in the loop as the media layer's own, early stops leave no ffmpeg running and
no partial segment, the queues stay bounded, and ffmpeg's CPU time is filed by kind."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from facefusion_ray.errors import MediaError
from facefusion_ray.media import SegmentEncoder, probe_media
from facefusion_ray.media.decode import iter_decoded_frames
from facefusion_ray.media.images import partial_path
from facefusion_ray.media.process_cpu import CHILD_CPU, DECODE, ENCODE
from facefusion_ray.pipeline.pipe_overlap import ReadAhead, WriteBehind

try:
    from media_factory import make_clip
except ImportError:  # tests/ became a package
    from tests.media_factory import make_clip

SIZE = (160, 90)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("overlap")
    return make_clip(folder / "clip.mp4", frames=60, size=f"{SIZE[0]}x{SIZE[1]}", audio=False)


def overlap_threads() -> list[threading.Thread]:
    names = ("read-ahead", "write-behind")
    return [thread for thread in threading.enumerate() if thread.name in names]


def test_frames_read_ahead_arrive_whole_and_in_order(clip: Path) -> None:
    info = probe_media(clip)
    direct = [frame.fingerprint() for frame in iter_decoded_frames(clip, 5, 40, info)]
    with ReadAhead(iter_decoded_frames(clip, 5, 40, info)) as frames:
        ahead = [frame.fingerprint() for frame in frames]
    assert ahead == direct and len(set(ahead)) == 40
    assert not overlap_threads()


def test_a_reader_stopped_early_stops_its_ffmpeg(
    clip: Path, started_ffmpegs: list[subprocess.Popen[bytes]]
) -> None:
    info = probe_media(clip)
    decoded_before = CHILD_CPU.snapshot().get(DECODE, 0.0)
    with ReadAhead(iter_decoded_frames(clip, 0, 60, info), depth=2) as frames:
        for taken, _ in enumerate(frames):
            if taken == 3:
                break
    assert not overlap_threads()
    assert started_ffmpegs and all(process.returncode is not None for process in started_ffmpegs)
    # The killed decoder was reaped by the wrapper, which filed its CPU time as decoding.
    assert CHILD_CPU.snapshot().get(DECODE, 0.0) > decoded_before


def test_the_reader_holds_no_more_than_its_depth() -> None:
    produced: list[int] = []
    closed = threading.Event()

    def counting() -> Iterator[int]:
        try:
            for number in range(1000):
                produced.append(number)
                yield number
        finally:
            closed.set()

    with ReadAhead(counting(), depth=3) as items:
        first = next(iter(items))
        time.sleep(0.3)  # room for the thread to run ahead as far as it may
        # The queue holds 3, and one more waits in the thread to be put.
        assert first == 0 and len(produced) <= 1 + 3 + 1
    assert closed.is_set()


def test_a_truncated_video_fails_in_the_loop_as_before(tmp_path: Path) -> None:
    mkv = make_clip(tmp_path / "later_cut.mkv", frames=90, audio=False)
    info = probe_media(mkv)
    mkv.write_bytes(mkv.read_bytes()[: mkv.stat().st_size // 2])
    received = 0
    truncated = r"truncated video: .*later_cut\.mkv ended at frame \d+"
    with (
        pytest.raises(MediaError, match=truncated),
        ReadAhead(iter_decoded_frames(mkv, 0, 90, info)) as frames,
    ):
        for _ in frames:
            received += 1
    assert 0 < received < 90 and not overlap_threads()


def frames_for(count: int) -> Iterator[np.ndarray]:
    width, height = SIZE
    for value in range(count):
        yield np.full((height, width, 3), value * 3 % 256, np.uint8)


def test_writes_behind_make_the_same_segment(tmp_path: Path) -> None:
    segment = tmp_path / "segment.mp4"
    with WriteBehind(SegmentEncoder(segment, *SIZE, Fraction(30))) as writer:
        for frame in frames_for(30):
            writer.write(frame)
    assert probe_media(segment).frame_count == 30
    assert not overlap_threads()


def test_an_encoder_that_dies_in_the_writer_thread_fails_the_loop(tmp_path: Path) -> None:
    segment = tmp_path / "segment.mp4"
    encoder = SegmentEncoder(segment, *SIZE, Fraction(30))
    encoded_before = CHILD_CPU.snapshot().get(ENCODE, 0.0)
    failure = r"cannot encode segment .*segment\.mp4"
    with pytest.raises(MediaError, match=failure), WriteBehind(encoder) as writer:
        for number, frame in enumerate(frames_for(400)):
            writer.write(frame)
            if number == 5:
                process = encoder._process  # the running ffmpeg behind the writer thread
                assert process is not None
                os.kill(process.process.pid, signal.SIGKILL)
    assert not segment.exists() and not partial_path(segment).exists()
    assert not overlap_threads()
    assert CHILD_CPU.snapshot().get(ENCODE, 0.0) > encoded_before


def test_a_loop_that_fails_aborts_the_segment(tmp_path: Path) -> None:
    segment = tmp_path / "segment.mp4"
    encoder = SegmentEncoder(segment, *SIZE, Fraction(30))
    with pytest.raises(RuntimeError, match="swap failed"), WriteBehind(encoder) as writer:
        for number, frame in enumerate(frames_for(30)):
            writer.write(frame)
            if number == 10:
                raise RuntimeError("swap failed")
    assert not segment.exists() and not partial_path(segment).exists()
    assert not overlap_threads()
