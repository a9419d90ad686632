"""Video encoders and decoder acceleration: FaceFusion's encoder names, its quality and preset
mapping per encoder family, and which of them the bundled ffmpeg can open on this machine.

FaceFusion 3.8.1 maps `--output-video-quality` (0-100, higher is better) linearly onto each
family's scale, rounded: libx264 / libx265 CRF 51..0, libvpx-vp9 CRF 63..0, NVENC CQ 51..0.
Presets go to x264 / x265 as they are and to NVENC as fast / medium / slow; libvpx-vp9 gets
none. The AV1 encoders are not in FaceFusion 3.8.1: here libsvtav1 takes CRF 63..0 and an SVT
preset number, av1_nvenc CQ 63..0 and NVENC's preset names.
"""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass

from facefusion_ray.errors import MediaError
from facefusion_ray.media.ffmpeg_tool import ffmpeg_command

# libx264's presets, fastest first (FaceFusion's nine, and placebo).
VIDEO_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
CPU_VIDEO_ENCODERS = ("libx264", "libx265", "libvpx-vp9", "libsvtav1")
NVENC_VIDEO_ENCODERS = ("h264_nvenc", "hevc_nvenc", "av1_nvenc")
VIDEO_ENCODERS = CPU_VIDEO_ENCODERS + NVENC_VIDEO_ENCODERS
FALLBACK_VIDEO_ENCODER = "libx264"
NO_HWACCEL = "none"
DECODE_HWACCELS = (NO_HWACCEL, "cuda")
# For tests only: comma-separated encoders treated as missing from this process's ffmpeg, so a
# test can give one Ray node an ffmpeg "without" an encoder the others have.
HIDDEN_ENCODERS_ENV = "FACEFUSION_RAY_TEST_HIDDEN_VIDEO_ENCODERS"

_X26X = ("libx264", "libx265")
# The worst value of each encoder's quality scale; quality 100 maps to 0.
_QUALITY_SCALES = {
    "libx264": ("-crf", 51),
    "libx265": ("-crf", 51),
    "libvpx-vp9": ("-crf", 63),
    "libsvtav1": ("-crf", 63),
    "h264_nvenc": ("-cq", 51),
    "hevc_nvenc": ("-cq", 51),
    "av1_nvenc": ("-cq", 63),
}
_NVENC_PRESETS = {"medium": "medium", "slow": "slow", "slower": "slow", "veryslow": "slow"}
_NVENC_PRESETS |= {"placebo": "slow"}
# SVT-AV1 presets run 0 (slowest) to 13 (fastest).
_SVT_PRESETS = dict(zip(VIDEO_PRESETS, (12, 11, 10, 9, 8, 6, 4, 3, 2, 1), strict=True))


def quality_value(encoder: str, quality: int) -> int:
    """`quality` 0-100 on `encoder`'s scale, rounded as FaceFusion rounds it."""
    if not 0 <= quality <= 100:
        raise ValueError(f"quality must be between 0 and 100, got {quality}")
    worst = _QUALITY_SCALES[encoder][1]
    return round(worst - quality * worst / 100)


def encoder_args(encoder: str, quality: int, preset: str, width: int, height: int) -> list[str]:
    """The ffmpeg output options that encode with `encoder` at `quality` and `preset`."""
    if encoder not in _QUALITY_SCALES:
        raise ValueError(f"unknown video encoder {encoder!r}")
    if preset not in VIDEO_PRESETS:
        raise ValueError(f"unknown video preset {preset!r}")
    args = ["-c:v", encoder, _QUALITY_SCALES[encoder][0], str(quality_value(encoder, quality))]
    if encoder in _X26X:
        args += ["-preset", preset]
    elif encoder in NVENC_VIDEO_ENCODERS:
        args += ["-preset", _NVENC_PRESETS.get(preset, "fast")]
    elif encoder == "libsvtav1":
        args += ["-preset", str(_SVT_PRESETS[preset])]
    elif encoder == "libvpx-vp9":
        args += ["-b:v", "0"]  # no bitrate cap: CRF alone sets the quality
    # In-band parameter sets on every keyframe, so joined segments decode under one header.
    if encoder == "libx264":
        args += ["-x264-params", "repeat-headers=1"]
    elif encoder == "libx265":
        args += ["-x265-params", "repeat-headers=1:log-level=error"]
    if encoder in ("libx265", "hevc_nvenc"):
        args += ["-tag:v", "hvc1"]  # FaceFusion's tag for HEVC in MP4 / MOV
    return [*args, "-pix_fmt", _pixel_format(encoder, width, height)]


def _pixel_format(encoder: str, width: int, height: int) -> str:
    # 4:2:0 cannot subsample the chroma of odd-sized frames; 4:4:4 keeps their exact size
    # (SVT-AV1 has only 4:2:0).
    if (width % 2 == 0 and height % 2 == 0) or encoder == "libsvtav1":
        return "yuv420p"
    return "yuv444p"


def hwaccel_args(hwaccel: str) -> list[str]:
    """Input options that decode on `hwaccel`; frames come back to system memory."""
    if hwaccel == NO_HWACCEL:
        return []
    if hwaccel not in DECODE_HWACCELS:
        raise ValueError(f"unknown decode hwaccel {hwaccel!r}")
    return ["-hwaccel", hwaccel]


@functools.cache
def available_video_encoders() -> frozenset[str]:
    """Video encoders the bundled ffmpeg lists (`ffmpeg -encoders`), read once per process."""
    listing = subprocess.run(
        ffmpeg_command("-encoders"), capture_output=True, text=True, check=False
    ).stdout
    listed = {
        line.split()[1] for line in listing.splitlines() if line.startswith(" V") and line.split()
    }
    hidden = {name.strip() for name in os.environ.get(HIDDEN_ENCODERS_ENV, "").split(",")}
    return frozenset(listed - hidden)


@functools.cache
def encoder_failure(encoder: str) -> str | None:
    """Why `encoder` cannot encode here, or None. Hardware encoders are opened on one frame."""
    if encoder not in available_video_encoders():
        return "not in this ffmpeg"
    if encoder not in NVENC_VIDEO_ENCODERS:
        return None
    one_frame = ["-f", "lavfi", "-i", "color=c=black:s=256x256:r=25", "-frames:v", "1"]
    return _probe_failure([*one_frame, "-c:v", encoder, "-f", "null", "-"])


@functools.cache
def hwaccel_failure(hwaccel: str) -> str | None:
    """Why decoding cannot use `hwaccel` here (its device does not open), or None."""
    if hwaccel == NO_HWACCEL:
        return None
    device = ["-init_hw_device", f"{hwaccel}=probe"]
    one_frame = ["-f", "lavfi", "-i", "nullsrc=s=64x64:d=0.04", "-frames:v", "1"]
    return _probe_failure([*device, *one_frame, "-f", "null", "-"])


def _probe_failure(args: list[str]) -> str | None:
    result = subprocess.run(
        ffmpeg_command("-loglevel", "error", *args),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode == 0:
        return None
    # The first line names the cause (e.g. "Cannot load libcuda.so.1"); later ones are fallout.
    lines = [line.split("] ")[-1].strip() for line in result.stderr.splitlines() if line.strip()]
    return lines[0] if lines else f"ffmpeg exited with {result.returncode}"


@dataclass(frozen=True)
class CodecChoice:
    """The encoder and decoder acceleration a render uses, and what was given up for them."""

    encoder: str
    hwaccel: str
    notes: tuple[str, ...] = ()


class CodecUnavailable(MediaError):
    """A requested encoder or decoder acceleration cannot run here (and no fallback is allowed)."""


def choose_codecs(encoder: str, hwaccel: str, allow_fallback: bool) -> CodecChoice:
    """`encoder` and `hwaccel` where they work here; else, with `allow_fallback`, libx264 and CPU
    decoding with a note each, without it CodecUnavailable naming the cause."""
    notes: list[str] = []
    encoder = _usable_or_fallback(
        f"output video encoder {encoder}",
        encoder_failure(encoder),
        allow_fallback,
        notes,
        encoder,
        FALLBACK_VIDEO_ENCODER,
        f"encoded with {FALLBACK_VIDEO_ENCODER}",
    )
    hwaccel = _usable_or_fallback(
        f"decode hwaccel {hwaccel}",
        hwaccel_failure(hwaccel),
        allow_fallback,
        notes,
        hwaccel,
        NO_HWACCEL,
        "decoded on the CPU",
    )
    return CodecChoice(encoder, hwaccel, tuple(notes))


def _usable_or_fallback(
    what: str,
    reason: str | None,
    allow_fallback: bool,
    notes: list[str],
    chosen: str,
    fallback: str,
    fallback_note: str,
) -> str:
    """`chosen` when it works (`reason` is None); else CodecUnavailable, or with
    `allow_fallback`, `fallback` and a note saying why."""
    if reason is None:
        return chosen
    message = f"{what} cannot be used: {reason}"
    if not allow_fallback:
        raise CodecUnavailable(message)
    notes.append(f"{message}; {fallback_note}")
    return fallback
