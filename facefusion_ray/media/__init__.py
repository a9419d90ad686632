"""Media layer: probing, frame-exact decoding, segment encoding and final assembly via ffmpeg."""

from facefusion_ray.media.assemble import assemble_video
from facefusion_ray.media.decode import (
    DecodedFrame,
    frame_fingerprint,
    iter_decoded_frames,
    iter_frames,
)
from facefusion_ray.media.encode import SegmentEncoder, quality_to_crf, segment_frame_count
from facefusion_ray.media.ffmpeg_tool import ffmpeg_executable, run_ffmpeg
from facefusion_ray.media.images import read_image, write_image_atomic
from facefusion_ray.media.probe import MediaInfo, probe_media

__all__ = [
    "DecodedFrame",
    "MediaInfo",
    "SegmentEncoder",
    "assemble_video",
    "ffmpeg_executable",
    "frame_fingerprint",
    "iter_decoded_frames",
    "iter_frames",
    "probe_media",
    "quality_to_crf",
    "read_image",
    "run_ffmpeg",
    "segment_frame_count",
    "write_image_atomic",
]
