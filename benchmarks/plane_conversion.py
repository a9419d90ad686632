"""What a frame's colour conversions cost: the whole frame both ways against the faces' regions.

Before, every frame crossed 4:2:0 -> BGR (after decoding) and BGR -> 4:2:0 (before encoding)
whole, with OpenCV. Now a frame keeps its decoded planes and only the rectangles its faces reach
go to BGR and back (media/plane_edit.py); a frame without faces to swap is not converted at all,
and on a cache miss the analysis still reads the whole frame as BGR (one OpenCV conversion,
`analysis_view_ms`): a cache hit pays `face_regions_ms`, a miss that and the analysis view.

FRAMES frames of the 720p sample with six faces each, and FRAMES with one, the embedded models,
Tom Hanks as the source; faces are analysed once outside the timing, and each way is timed
around the same swap (conversions only, regions as on a cache hit), alternating frame by frame,
one process, one thread. The regions are converted in BT.601 (the sample's matrix) and again
with the same planes tagged BT.709 (other arithmetic, same cost to the whole-frame path). CPU
time of this process, not wall time: other work on the machine does not count, its effect on
caches does. Minor page faults are counted too: a fault costs about as much as converting a
thousand pixels here, and how many a frame takes depends on the allocator's mood:

    .venv/bin/python -m benchmarks.plane_conversion
"""

import json
import resource
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import cv2
import numpy as np

from facefusion_ray.analysis.face import Face
from facefusion_ray.inference.execution import ExecutionConfig
from facefusion_ray.media import DecodedFrame, iter_decoded_frames, probe_media
from facefusion_ray.media.plane_edit import PlaneEdit
from facefusion_ray.media.yuv_colour import BT601, BT709, Box, YuvMatrix, even_box, merged_boxes
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
T = TypeVar("T")


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


class Meter:
    """CPU milliseconds and minor page faults of the calls it times, per name."""

    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = {}
        self.faults: dict[str, list[int]] = {}

    def __call__(self, name: str, call: Callable[..., T], *args: object) -> T:
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        started = time.process_time_ns()
        result = call(*args)
        self.ms.setdefault(name, []).append((time.process_time_ns() - started) / 1e6)
        self.faults.setdefault(name, []).append(
            resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        )
        return result

    def add(self, name: str, *parts: str) -> None:
        """`name`: the sum of `parts` frame by frame."""
        self.ms[name] = [sum(values) for values in zip(*(self.ms[p] for p in parts), strict=True)]
        self.faults[name] = [
            sum(values) for values in zip(*(self.faults[p] for p in parts), strict=True)
        ]


def measure(pipeline: FramePipeline, frames: list[DecodedFrame]) -> dict[str, float]:
    """Median CPU milliseconds (and mean minor faults) a frame: whole-frame conversions against
    the faces' regions in either matrix."""
    faces = [pipeline.analyse(frame.pixels) for frame in frames]
    chosen = [pipeline.choose(frame_faces) for frame_faces in faces]
    shape = (frames[0].height, frames[0].width, 3)
    meter = Meter()
    area: list[float] = []
    for _ in range(ROUNDS):
        for frame, frame_faces, frame_chosen in zip(frames, faces, chosen, strict=True):
            planes = np.asarray(frame.planes)
            bgr = meter("to_bgr", cv2.cvtColor, planes, cv2.COLOR_YUV2BGR_I420)
            pipeline.apply(bgr, frame_faces)
            meter("to_planes", cv2.cvtColor, bgr, cv2.COLOR_BGR2YUV_I420)
            meter("analysis_view", cv2.cvtColor, planes, cv2.COLOR_YUV2BGR_I420)
            boxes = pipeline.reach(frame_faces, frame_chosen, shape)
            for matrix in (BT601, BT709):
                # As on a cache hit: the regions come from the planes themselves.
                hit = DecodedFrame(
                    frame.delivered, frame.pixel_format, frame.width, frame.height, matrix
                )
                regions(meter, pipeline, hit, boxes, frame_faces, frame_chosen, matrix)
            area.append(covered_share(boxes or [], frame.width, frame.height))
    meter.add("whole", "to_bgr", "to_planes")
    for matrix in (BT601, BT709):
        meter.add(f"regions_{matrix.name}", f"fill_{matrix.name}", f"finish_{matrix.name}")
    names = ["whole", "analysis_view"]
    names += [f"{part}_{m.name}" for m in (BT601, BT709) for part in ("regions", "fill", "finish")]
    return {
        "faces_per_frame": statistics.mean(len(frame_faces) for frame_faces in faces),
        "face_regions_share_of_frame": round(statistics.mean(area), 3),
        **{f"{name}_ms_median": round(statistics.median(meter.ms[name]), 3) for name in names},
        **{f"{name}_faults_mean": round(statistics.mean(meter.faults[name])) for name in names},
    }


def regions(
    meter: Meter,
    pipeline: FramePipeline,
    frame: DecodedFrame,
    boxes: list[Box] | None,
    faces: list[Face],
    chosen: list[Face],
    matrix: YuvMatrix,
) -> None:
    edit = meter(f"fill_{matrix.name}", PlaneEdit, frame, boxes)
    pipeline.apply(edit.canvas, faces, chosen)
    meter(f"finish_{matrix.name}", edit.finish)


def covered_share(boxes: list[Box], width: int, height: int) -> float:
    """The share of the frame the plane edit converts (its even, merged boxes)."""
    merged = merged_boxes([even_box(box, width, height) for box in boxes])
    return sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in merged) / (width * height)


if __name__ == "__main__":
    main()
