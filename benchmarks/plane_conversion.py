"""What a frame's colour conversions cost: the whole frame both ways against the faces' regions.

Before, every frame crossed 4:2:0 -> BGR (after decoding) and BGR -> 4:2:0 (before encoding)
whole, with OpenCV. Now a frame keeps its decoded planes and only the rectangles its faces reach
go to BGR and back (media/plane_edit.py); a frame without faces to swap is not converted at all,
and on a cache miss the analysis still reads the whole frame as BGR (one OpenCV conversion,
`analysis_view_ms`): a cache hit pays `face_regions_ms`, a miss that and the analysis view.

FRAMES frames of the 720p sample with six faces each, and FRAMES with one, the embedded models,
Tom Hanks as the source; faces are analysed once outside the timing, and each way is timed
around the same swap (conversions only, regions as on a cache hit), alternating, one process,
one thread:

    .venv/bin/python -m benchmarks.plane_conversion
"""

import json
import statistics
import time

import cv2
import numpy as np

from facefusion_ray.inference.execution import ExecutionConfig
from facefusion_ray.media import DecodedFrame, iter_decoded_frames, probe_media
from facefusion_ray.media.plane_edit import PlaneEdit
from facefusion_ray.pipeline.frame_pipeline import FramePipeline
from facefusion_ray.pipeline.job_models import JobModels
from facefusion_ray.pipeline.model_loading import load_detector
from facefusion_ray.pipeline.sources import prepare_source_identity
from facefusion_ray.pipeline.stage_clock import StageClock
from facefusion_ray.sample_media import build_sample_media
from facefusion_ray.settings import SwapSettings

FRAMES = 60
# The group of six (frames 0-59), then the astronaut alone (frames 240-299).
STARTS = {"six_faces": 0, "one_face": 240}
ROUNDS = 3


def main() -> None:
    cv2.setNumThreads(1)
    media = build_sample_media()
    settings = SwapSettings()
    models = JobModels(ExecutionConfig(intra_op_threads=1))
    plan, sessions = models.plan_for(settings), models.sessions_for(settings)
    identity = prepare_source_identity(
        [media.source_tom_hanks], load_detector(plan, settings, sessions)
    )
    pipeline = FramePipeline(settings, plan, identity, StageClock(), sessions)
    info = probe_media(media.target_video)
    results = {
        name: measure(pipeline, list(iter_decoded_frames(media.target_video, start, FRAMES, info)))
        for name, start in STARTS.items()
    }
    print(json.dumps({"frames": FRAMES, "rounds": ROUNDS, **results}, indent=2))


def measure(pipeline: FramePipeline, frames: list[DecodedFrame]) -> dict[str, float]:
    """Median milliseconds a frame: whole-frame conversions against the faces' regions."""
    faces = [pipeline.analyse(frame.pixels) for frame in frames]
    shape = (frames[0].height, frames[0].width, 3)
    whole: list[float] = []
    regions: list[float] = []
    analysis_view: list[float] = []
    area: list[float] = []
    for _ in range(ROUNDS):
        for frame, frame_faces in zip(frames, faces, strict=True):
            planes = np.asarray(frame.planes)
            started = time.perf_counter()
            bgr = cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_I420)
            converted = time.perf_counter()
            pipeline.apply(bgr, frame_faces)
            restarted = time.perf_counter()
            cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
            whole.append(converted - started + time.perf_counter() - restarted)

            started = time.perf_counter()
            cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_I420)  # what a cache miss's analysis reads
            analysis_view.append(time.perf_counter() - started)

            # As on a cache hit: the regions come from the planes themselves.
            hit = DecodedFrame(frame.delivered, frame.pixel_format, frame.width, frame.height)
            chosen = pipeline.choose(frame_faces)
            started = time.perf_counter()
            edit = PlaneEdit(hit, pipeline.reach(frame_faces, chosen, shape))
            converted = time.perf_counter()
            pipeline.apply(edit.canvas, frame_faces, chosen)
            restarted = time.perf_counter()
            edit.finish()
            regions.append(converted - started + time.perf_counter() - restarted)
            covered = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in edit.boxes)
            area.append(covered / (shape[0] * shape[1]))
    return {
        "faces_per_frame": statistics.mean(len(frame_faces) for frame_faces in faces),
        "whole_frame_ms_median": round(statistics.median(whole) * 1000, 3),
        "face_regions_ms_median": round(statistics.median(regions) * 1000, 3),
        "analysis_view_ms_median": round(statistics.median(analysis_view) * 1000, 3),
        "face_regions_share_of_frame": round(statistics.mean(area), 3),
    }


if __name__ == "__main__":
    main()
