"""A video's colour tags (matrix, primaries, transfer, range): read from ffmpeg's stream summary,
used to pick the YUV matrix of the frame conversions, and written onto the output.

ffmpeg prints them after the pixel format, e.g. `yuv420p(tv, bt709, progressive)` when all three
names agree, `yuv420p(tv, bt470bg/bt470bg/smpte170m)` when not, with `unknown` for an unset one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from facefusion_ray.media.yuv_colour import BT601, BT709, YuvMatrix

_RANGES = frozenset({"tv", "pc"})
_UNSET = frozenset({"", "unknown", "unspecified", "reserved"})
# Matrices the 4:2:0 planes path converts itself; others go through swscale as BGR.
_PLANAR_MATRICES = frozenset({"", "bt709", "bt470bg", "smpte170m"})
_PIXEL_FORMAT_WITH_DETAILS = re.compile(r"\b(?:yuv|yuvj|nv|gray|p0)\w*\((?P<inside>[^()]*)\)")


@dataclass(frozen=True)
class ColourTags:
    """ffmpeg's names for a stream's colour tags; "" where the file does not say."""

    space: str = ""
    primaries: str = ""
    transfer: str = ""
    range: str = ""

    @property
    def matrix(self) -> YuvMatrix:
        """BT.709 for video tagged so, BT.601 otherwise (the default of untagged video here)."""
        return BT709 if self.space == "bt709" else BT601

    @property
    def planes_convertible(self) -> bool:
        """Whether 8-bit 4:2:0 planes with these tags are converted here (limited range, BT.601
        or BT.709); swscale converts the rest."""
        return self.space in _PLANAR_MATRICES and self.range != "pc"

    def output_filter(self) -> str | None:
        """The ffmpeg filter that tags encoded frames with the input's colour space; the
        output is always limited range. None for an untagged input (left untagged)."""
        known = {
            "colorspace": self.space,
            "color_primaries": self.primaries,
            "color_trc": self.transfer,
        }
        parameters = [f"{name}={value}" for name, value in known.items() if value]
        if not parameters and not self.range:
            return None
        return "setparams=" + ":".join([*parameters, "range=tv"])


def parse_colour_tags(video_details: str) -> ColourTags:
    """The colour tags in a stream summary such as 'h264 (High), yuv420p(tv, bt709), 1280x720'."""
    match = _PIXEL_FORMAT_WITH_DETAILS.search(video_details)
    if match is None:
        return ColourTags()
    colour_range, names = "", ("", "", "")
    for item in (part.strip() for part in match["inside"].split(",")):
        if item in _RANGES:
            colour_range = item
        elif "/" in item:
            parts = item.split("/")
            if len(parts) == 3:
                names = (parts[0], parts[1], parts[2])
        elif item and item != "progressive" and "first" not in item:
            names = (item, item, item)
    space, primaries, transfer = ("" if name in _UNSET else name for name in names)
    return ColourTags(space, primaries, transfer, colour_range)
