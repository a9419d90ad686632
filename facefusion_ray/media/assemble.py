"""Joining encoded segments, in order, into the final video with the original audio."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from facefusion_ray.errors import MediaError
from facefusion_ray.media.container_header import read_container_header
from facefusion_ray.media.encode import segment_frame_count
from facefusion_ray.media.ffmpeg_tool import FfmpegProcess
from facefusion_ray.media.images import partial_path
from facefusion_ray.media.remote_media import MediaSource, ffmpeg_input_args, hidden_urls

OUTPUT_MUXERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}

# Each segment starts its own decode-timestamp delay for B-frames, but a 1-frame segment has
# none, so the concat demuxer yields non-monotonic DTS there and ffmpeg "fixes" them into a
# broken timeline. Presentation timestamps stay exact, so DTS are rebuilt as one evenly spaced
# series lagging by more frames than x264's B-pyramid reorders (at most 2): DTS <= PTS holds.
_DTS_LAG_FRAMES = 3


def assemble_video(
    segments: Sequence[Path], fps: Fraction, output: Path, audio_source: MediaSource | None
) -> None:
    """Concatenate SegmentEncoder segments into `output`, adding `audio_source`'s audio if any.

    `fps` must be the rate the segments were encoded at; the audio is cut at the video's end.

    The output appears atomically: on failure nothing is left at `output` (an existing file
    there is kept) and MediaError is raised.
    """
    output = Path(output)
    muxer = OUTPUT_MUXERS.get(output.suffix.lower())
    if muxer is None:
        supported = ", ".join(OUTPUT_MUXERS)
        raise MediaError(f"unsupported output container (use {supported}): {output}")
    if not segments:
        raise MediaError(f"no segments to assemble into {output}")
    frame_counts = [segment_frame_count(segment) for segment in segments]
    audio = audio_source if audio_source and read_container_header(audio_source).has_audio else None
    temporary = partial_path(output)
    try:
        plan = _MuxPlan(segments, frame_counts, Fraction(fps), muxer, output, temporary)
        if audio is None:
            plan.run(None, audio_codec=None)
        else:
            try:
                plan.run(audio, audio_codec="copy")
            except MediaError:
                # The container refused the original codec (e.g. A-law in MP4): re-encode it.
                plan.run(audio, audio_codec="aac")
        try:
            os.replace(temporary, output)
        except OSError as error:
            raise MediaError(f"cannot write {output}: {error.strerror or error}") from error
    finally:
        temporary.unlink(missing_ok=True)


class _MuxPlan:
    def __init__(
        self,
        segments: Sequence[Path],
        frame_counts: Sequence[int],
        fps: Fraction,
        muxer: str,
        output: Path,
        destination: Path,
    ) -> None:
        self.concat_list = _concat_list(segments, frame_counts, fps)
        self.fps = fps
        self.total_frames = sum(frame_counts)
        self.muxer = muxer
        self.output = output
        self.destination = destination

    def run(self, audio_source: MediaSource | None, audio_codec: str | None) -> None:
        process = FfmpegProcess(
            self._args(audio_source, audio_codec),
            stdin=subprocess.PIPE,
            hidden=hidden_urls(audio_source),
        )
        try:
            stdin = process.process.stdin
            assert stdin is not None
            try:
                stdin.write(self.concat_list)
                stdin.close()
            except BrokenPipeError:
                pass  # ffmpeg gave up before reading the list; its stderr says why
            if process.wait() != 0:
                raise MediaError(f"cannot assemble {self.output}: {process.failure_reason()}")
        finally:
            process.close()

    def _args(self, audio_source: MediaSource | None, audio_codec: str | None) -> list[str]:
        frame_ticks = f"{self.fps.denominator}/({self.fps.numerator}*TB)"
        args = [
            "-loglevel", "error",
            # The list arrives on stdin, so thousands of segments never hit argv limits.
            "-f", "concat", "-safe", "0", "-protocol_whitelist", "file,pipe", "-i", "pipe:0",
        ]  # fmt: skip
        if audio_source is not None:
            # Stop the audio at the video's end; -shortest would cut video if audio ends early.
            duration = self.total_frames / self.fps
            args += ["-t", f"{float(duration):.6f}", *ffmpeg_input_args(audio_source)]
        args += ["-map", "0:v:0", "-c:v", "copy"]
        args += ["-bsf:v", f"setts=pts=PTS:dts=round((N-{_DTS_LAG_FRAMES})*{frame_ticks})"]
        if audio_source is not None:
            args += ["-map", "1:a", "-c:a", audio_codec or "copy"]
            if audio_codec == "aac":
                args += ["-b:a", "192k"]
        if self.muxer in ("mp4", "mov"):
            args += ["-movflags", "+faststart"]
        args += ["-f", self.muxer, "-y", "file:" + os.path.abspath(self.destination)]
        return args


def _concat_list(segments: Sequence[Path], frame_counts: Sequence[int], fps: Fraction) -> bytes:
    """An ffconcat script naming each segment with its exact duration.

    Without `duration` the demuxer offsets each segment by its container duration, which MP4
    rounds to milliseconds in the B-frame edit list (5 frames at 30 fps -> 166 ms), shifting
    later frames. Durations are given in microseconds, rounded from the exact running total so
    rounding never accumulates across thousands of segments.
    """
    lines = ["ffconcat version 1.0"]
    elapsed_frames = 0
    elapsed_microseconds = 0
    for segment, frame_count in zip(segments, frame_counts, strict=True):
        location = os.path.abspath(segment)
        if "\n" in location or "\r" in location:
            raise MediaError(f"segment path contains a line break: {segment!r}")
        # Inside single quotes everything is literal; a quote is closed, escaped, reopened.
        quoted = "'" + ("file:" + location).replace("'", "'\\''") + "'"
        elapsed_frames += frame_count
        end_microseconds = round(elapsed_frames / fps * 1_000_000)
        duration = end_microseconds - elapsed_microseconds
        elapsed_microseconds = end_microseconds
        lines.append(f"file {quoted}")
        lines.append(f"duration {duration // 1_000_000}.{duration % 1_000_000:06d}")
    return ("\n".join(lines) + "\n").encode("utf-8")
