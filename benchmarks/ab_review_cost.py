"""What the A/B review costs a render, on one thread (python -m benchmarks.ab_review_cost).

The first 120 frames of the sample video (six faces) are analysed and swapped with Tom Hanks
once; then, alternately, three times each:
- `from_output`: what `ab` did after the job before the review moved into the actors: decode
  the 8 sampled frames of the encoded output, SFace on every swapped face there, thumbnails;
- `per_frame`: the actors' review of the same render: steadiness on every frame, face crops
  and thumbnails at the 8 sheet frames, SFace on one face at each identity frame.
Prints the seconds of each run beside the render's own swap and encode.
"""

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2

from facefusion_ray.comparison.frames import iter_selected_frames
from facefusion_ray.comparison.similarity import similarities_in_frames
from facefusion_ray.inference.execution import ExecutionConfig
from facefusion_ray.media import SegmentEncoder, iter_decoded_frames, probe_media
from facefusion_ray.media.frame_sampling import sample_frame_indices
from facefusion_ray.media.images import read_image
from facefusion_ray.pipeline.frame_pipeline import FramePipeline
from facefusion_ray.pipeline.job_models import JobModels
from facefusion_ray.pipeline.model_loading import load_detector, load_recognizer
from facefusion_ray.pipeline.review_probe import (
    ReviewFrames,
    ReviewPlan,
    ReviewProbe,
    source_embedding,
)
from facefusion_ray.pipeline.sources import prepare_source_identity
from facefusion_ray.pipeline.stage_clock import StageClock
from facefusion_ray.sample_media import build_sample_media
from facefusion_ray.settings import SwapSettings

FRAMES = 120
SHEET_FRAMES = 8
REPEATS = 3


def seconds(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return round(time.perf_counter() - started, 3)


def main() -> None:
    cv2.setNumThreads(1)
    media = build_sample_media()
    settings = SwapSettings()
    models = JobModels(ExecutionConfig())
    plan, sessions = models.plan_for(settings), models.sessions_for(settings)
    detector = load_detector(plan, settings, sessions)
    spec = models.store_for(settings).manifest.model(settings.face_recognizer_model)
    recognizer = load_recognizer(spec, sessions)
    identity = prepare_source_identity([media.source_tom_hanks], detector)
    pipeline = FramePipeline(settings, plan, identity, StageClock(), sessions)
    info = probe_media(media.target_video)
    decoded = iter_decoded_frames(str(media.target_video), 0, FRAMES, info)
    originals = [frame.pixels.copy() for frame in decoded]
    faces = [pipeline.analyse(frame) for frame in originals]
    embedding = source_embedding([read_image(media.source_tom_hanks)], detector, recognizer)
    output = Path(tempfile.mkdtemp(prefix="ab-review-cost-")) / "render.mp4"
    started = time.perf_counter()
    rendered = []
    with SegmentEncoder(output, info.width, info.height, info.fps) as encoder:
        for original, found in zip(originals, faces, strict=True):
            frame = original.copy()
            rendered.append((frame, pipeline.apply(frame, found)))
            encoder.write(frame)
    render_seconds = time.perf_counter() - started
    sheet = sample_frame_indices(FRAMES, SHEET_FRAMES)
    identity = sample_frame_indices(FRAMES, ReviewPlan().identity_count(FRAMES))

    def from_output() -> None:
        landmarks = {index: [f.landmarks_5 for f in rendered[index][1].swapped] for index in sheet}
        frames = dict(iter_selected_frames(output, sheet))
        similarities_in_frames(frames.items(), landmarks, embedding, recognizer)
        for index in sheet:
            cv2.resize(frames[index], (640, 360), interpolation=cv2.INTER_AREA)

    def per_frame() -> None:
        probe = ReviewProbe(ReviewFrames(tuple(sheet), tuple(identity), embedding), recognizer)
        for index, (original, found) in enumerate(zip(originals, faces, strict=True)):
            probe.before_swap(index, original, found)
            frame, outcome = rendered[index]
            probe.after_swap(index, frame, outcome.faces_detected, outcome.swapped)

    old, new = [], []
    for _ in range(REPEATS):  # alternately, so a change in the machine's load hits both
        old.append(seconds(from_output))
        new.append(seconds(per_frame))
    result = {
        "frames": FRAMES,
        "render_swap_and_encode_seconds": round(render_seconds, 2),
        "from_output_seconds": sorted(old),
        "per_frame_seconds": sorted(new),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
