"""A/B comparison: one target, many sources, analysed once, compared side by side."""

import logging
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from facefusion_ray.comparison import (
    AbEntry,
    ContactRow,
    build_contact_sheet,
    iter_selected_frames,
    sample_frame_indices,
    similarity_stats,
    source_embedding_for,
    write_ab_report,
)
from facefusion_ray.comparison.similarity import similarities_in_frames
from facefusion_ray.engine.job import run_job
from facefusion_ray.engine.job_options import JobOptions
from facefusion_ray.engine.job_report import FAILED, JobReport, RenderOutcome, write_job_report
from facefusion_ray.errors import MediaError
from facefusion_ray.inference.execution import ExecutionConfig
from facefusion_ray.media import probe_media
from facefusion_ray.pipeline.job_models import JobModels
from facefusion_ray.pipeline.model_loading import load_analyser, load_recognizer
from facefusion_ray.pipeline.model_plan import target_recognizer
from facefusion_ray.pipeline.render_request import RenderRequest, check_output_is_not_an_input
from facefusion_ray.settings import SwapSettings
from facefusion_ray.storage.locations import is_remote, stage_input

logger = logging.getLogger(__name__)

# Frames per render shown on the contact sheet, where the swapped faces are also compared
# with their source (SFace on every swapped face costs ~18 ms; 8 frames keep that small).
SAMPLED_FRAMES = 8
# Frames kept for the sheet are scaled to this height (its cells are 180 px high).
THUMBNAIL_HEIGHT = 360
CONTACT_SHEET_NAME = "contact_sheet.png"
REPORT_NAME = "report.html"
JOB_REPORT_NAME = "ab_report.json"


@dataclass
class AbResult:
    job: JobReport
    sheet: Path
    report: Path
    similarity: dict[str, dict[int, list[float]]]


def ab_outputs(target: str, sources: Sequence[str], output_dir: Path) -> list[Path]:
    """DIR/<target stem>__<source stem>.mp4, numbered when two sources share a stem."""
    target_stem = safe_stem(target)
    stems = [safe_stem(source) for source in sources]
    outputs = []
    for position, stem in enumerate(stems):
        unique = stem if stems.count(stem) == 1 else f"{stem}-{position + 1}"
        outputs.append(output_dir / f"{target_stem}__{unique}.mp4")
    return outputs


def safe_stem(location: str) -> str:
    stem = Path(location.rstrip("/")).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem) or "media"


def run_ab(
    target: str,
    sources: Sequence[str],
    output_dir: Path,
    settings: SwapSettings,
    options: JobOptions,
) -> AbResult:
    """Render every source over the target in one job, then the sheet and the report."""
    if is_remote(str(output_dir)):
        raise MediaError("the A/B output folder must be a local folder")
    output_dir.mkdir(parents=True, exist_ok=True)
    outputs = ab_outputs(target, sources, output_dir)
    requests = [
        RenderRequest(target, (source,), str(output), settings, name=safe_stem(source))
        for source, output in zip(sources, outputs, strict=True)
    ]
    for request in requests:
        check_output_is_not_an_input(request)
    job = run_job(requests, replace(options, landmark_samples=SAMPLED_FRAMES))
    write_job_report(job, output_dir / JOB_REPORT_NAME)
    storage_options = dict(options.storage_options)
    local_sources = [stage_input(source, storage_options) for source in sources]
    rendered = [render for render in job.renders if render.status != FAILED]
    frame_count = probe_media(Path(rendered[0].output)).frame_count if rendered else 0
    frame_indices = sample_frame_indices(frame_count, SAMPLED_FRAMES)
    samples = sample_renders(job.renders, local_sources, frame_indices, settings)
    similarity = {name: taken.similarity for name, taken in samples.items() if taken.similarity}
    sheet = output_dir / CONTACT_SHEET_NAME
    build_contact_sheet(
        [
            ContactRow(
                render.name,
                source,
                Path(render.output) if render.status != FAILED else None,
                samples[render.name].thumbnails if render.name in samples else None,
            )
            for render, source in zip(job.renders, local_sources, strict=True)
        ],
        frame_indices,
        sheet,
    )
    report = output_dir / REPORT_NAME
    write_ab_report(
        report,
        target,
        sheet,
        [entry_for(render, similarity.get(render.name)) for render in job.renders],
        similarity,
    )
    return AbResult(job, sheet, report, similarity)


@dataclass(frozen=True)
class SampledRender:
    """What the A/B report needs of one output: similarity and the sheet's thumbnails."""

    similarity: dict[int, list[float]]
    thumbnails: dict[int, np.ndarray]


def sample_renders(
    renders: Sequence[RenderOutcome],
    sources: Sequence[Path],
    frame_indices: Sequence[int],
    settings: SwapSettings,
) -> dict[str, SampledRender]:
    """Decode each output's sampled frames once: SFace similarity of the swapped faces to the
    source there, and thumbnails for the contact sheet."""
    models = JobModels(ExecutionConfig())
    sessions = models.sessions_for(settings)
    detector = load_analyser(models.plan_for(settings), settings, sessions)
    store = models.store_for(settings)
    recognizer_id = target_recognizer(settings, store.manifest)
    recognizer = load_recognizer(store.manifest.model(recognizer_id), sessions)

    def sample(render: RenderOutcome, source: Path) -> SampledRender:
        landmarks = {
            frame: [np.asarray(points, dtype=np.float32) for points in faces]
            for frame, faces in render.swapped_landmarks.items()
        }
        wanted = sorted(set(frame_indices) | set(landmarks))
        frames = dict(iter_selected_frames(Path(render.output), wanted))
        similarity: dict[int, list[float]] = {}
        if landmarks:
            embedding = source_embedding_for(source, detector, recognizer)
            similarity = similarities_in_frames(frames.items(), landmarks, embedding, recognizer)
        thumbnails = {index: thumbnail(frames[index]) for index in frame_indices}
        return SampledRender(similarity, thumbnails)

    sampled = [
        (render, source)
        for render, source in zip(renders, sources, strict=True)
        if render.status != FAILED
    ]
    # Decoding and SFace release the GIL: the outputs are sampled side by side.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = pool.map(lambda pair: sample(*pair), sampled)
        return {render.name: result for (render, _), result in zip(sampled, results, strict=True)}


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """A frame small enough to keep for every row of the sheet (twice its cell height)."""
    scale = THUMBNAIL_HEIGHT / frame.shape[0]
    if scale >= 1:
        return frame
    size = (max(1, round(frame.shape[1] * scale)), THUMBNAIL_HEIGHT)
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def entry_for(render: RenderOutcome, per_frame: dict[int, list[float]] | None) -> AbEntry:
    report = render.report
    frames_swapped = report.frames_swapped if report else 0
    stats = similarity_stats(per_frame or {}, frames_swapped)
    return AbEntry(
        source=render.name,
        output=Path(render.output) if render.status != FAILED else None,
        frames_total=report.frames_total if report else 0,
        frames_swapped=frames_swapped,
        similarity_mean=stats.mean,
        similarity_min=stats.minimum,
        seconds=report.seconds if report else 0.0,
        status="ok" if render.status != FAILED else (render.error or "failed"),
    )
