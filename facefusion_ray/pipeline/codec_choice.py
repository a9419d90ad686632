"""The encoder and decode acceleration a render really uses, chosen by the process that encodes.

A CPU-only head node must not refuse `h264_nvenc` for GPU workers that have it, so the driver
only checks the names (the settings' choices) and each process that renders a chunk probes its
own ffmpeg, once per process. With `--allow-cpu-fallback`, a node that cannot open the encoder
encodes with libx264 and says so in the chunk's notes. The render key names the encoder asked
for; every segment records the one that made it, and one output never mixes two encoders
(`one_encoder_segments`).
"""

from __future__ import annotations

import functools
import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from facefusion_ray.errors import MediaError
from facefusion_ray.media import MediaInfo, SegmentEncoder, iter_frames, probe_media
from facefusion_ray.media.encode import SEGMENT_SUFFIX
from facefusion_ray.media.video_codecs import FALLBACK_VIDEO_ENCODER, CodecChoice, choose_codecs
from facefusion_ray.settings import SwapSettings

logger = logging.getLogger(__name__)


def usable_codecs(settings: SwapSettings) -> CodecChoice:
    """The encoder and decode hwaccel this process renders `settings` with, and a note per
    fallback. CodecUnavailable (one line naming the cause) when one cannot open here and the
    settings do not allow falling back to the CPU."""
    return _usable_codecs(
        settings.output_video_encoder,
        settings.decode_hwaccel,
        settings.execution.allow_cpu_fallback,
    )


@functools.cache
def _usable_codecs(encoder: str, hwaccel: str, allow_fallback: bool) -> CodecChoice:
    choice = choose_codecs(encoder, hwaccel, allow_fallback)
    for note in choice.notes:  # once per process, not once per chunk
        logger.warning("%s", note)
    return choice


def acceptable_segment_encoders(settings: SwapSettings) -> frozenset[str]:
    """Encoders a stored segment of a render with `settings` may come from."""
    if settings.execution.allow_cpu_fallback:
        return frozenset({settings.output_video_encoder, FALLBACK_VIDEO_ENCODER})
    return frozenset({settings.output_video_encoder})


@contextmanager
def one_encoder_segments(
    segments: Sequence[Path], encoders: Sequence[str], settings: SwapSettings, notes: list[str]
) -> Iterator[list[Path]]:
    """`segments` (in order, each made by `encoders[i]`) as segments of one encoder.

    When nodes disagreed (some could not open the requested encoder and fell back), the
    segments of the requested encoder are encoded again with the fallback encoder, with a note:
    segments are joined without re-encoding, so they must come from one encoder."""
    if len(set(encoders)) <= 1:
        yield list(segments)
        return
    if not settings.execution.allow_cpu_fallback:
        several = ", ".join(sorted(set(encoders)))
        raise MediaError(
            f"the segments of this output came from several encoders ({several}) and "
            "--allow-cpu-fallback is off; render it again with --force"
        )
    redo = [index for index, encoder in enumerate(encoders) if encoder != FALLBACK_VIDEO_ENCODER]
    with tempfile.TemporaryDirectory(prefix="facefusion-ray-reencode-") as scratch:
        unified = list(segments)
        for index in redo:
            unified[index] = Path(scratch) / f"segment{index}{SEGMENT_SUFFIX}"
            _encode_again(segments[index], unified[index], settings)
        requested = sorted({encoders[index] for index in redo})
        notes.append(
            f"{len(redo)} of {len(segments)} segments made with {', '.join(requested)} were "
            f"encoded again with {FALLBACK_VIDEO_ENCODER}: other nodes fell back to it, and "
            "one output comes from one encoder"
        )
        logger.warning("%s", notes[-1])
        yield unified


def segment_encoder(
    path: Path, info: MediaInfo, settings: SwapSettings, encoder: str
) -> SegmentEncoder:
    """An encoder of segments like `info`'s frames (size, rate, colour tags) with the render's
    quality and preset."""
    if info.fps is None:
        raise ValueError(f"{info.path} has no frame rate to encode segments at")
    return SegmentEncoder(
        path,
        info.width,
        info.height,
        info.fps,
        quality=settings.output_video_quality,
        preset=settings.output_video_preset,
        encoder=encoder,
        colour=info.colour,
    )


def _encode_again(segment: Path, destination: Path, settings: SwapSettings) -> None:
    info = probe_media(segment)
    with segment_encoder(destination, info, settings, FALLBACK_VIDEO_ENCODER) as writer:
        for frame in iter_frames(segment, 0, info.frame_count, info):
            writer.write(frame)
