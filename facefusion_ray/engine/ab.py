"""A/B comparison: one target, many sources, analysed once, compared side by side."""

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from facefusion_ray.atomic_files import write_bytes_atomically
from facefusion_ray.comparison import ContactRow, build_contact_sheet
from facefusion_ray.comparison.face_sheet import FaceSheetLayout, FaceSheetRow, build_face_sheet
from facefusion_ray.comparison.html_report import AbEntry, AbPage, write_ab_report
from facefusion_ray.comparison.review_figures import review_figures
from facefusion_ray.engine.job import run_job
from facefusion_ray.engine.job_options import JobOptions
from facefusion_ray.engine.job_report import FAILED, JobReport, RenderOutcome, write_job_report
from facefusion_ray.errors import MediaError
from facefusion_ray.media import probe_media
from facefusion_ray.media.frame_sampling import sample_frame_indices
from facefusion_ray.pipeline.render_request import RenderRequest, check_output_is_not_an_input
from facefusion_ray.pipeline.review_probe import (
    ChunkReview,
    ReviewPlan,
    decode_jpeg,
    merge_reviews,
)
from facefusion_ray.settings import SwapSettings
from facefusion_ray.storage.locations import is_remote, stage_input

logger = logging.getLogger(__name__)

# What the actors measure of every render: the face sheet's moments and the identity frames.
REVIEW_PLAN = ReviewPlan()
CONTACT_SHEET_NAME = "contact_sheet.png"
FACE_SHEET_NAME = "face_sheet.jpg"
REPORT_NAME = "report.html"
JOB_REPORT_NAME = "ab_report.json"


@dataclass
class AbResult:
    job: JobReport
    sheet: Path
    report: Path
    # source name -> frame -> identity similarity of the faces measured there
    similarity: dict[str, dict[int, list[float]]]
    face_sheet: Path | None = None
    face_sheet_layout: FaceSheetLayout | None = None
    entries: tuple[AbEntry, ...] = ()


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
    """Render every source over the target in one job (the actors measure each render as
    they go), then the sheets, the page and the JSON report beside the outputs."""
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
    job = run_job(requests, replace(options, review=REVIEW_PLAN))
    # The job's report at once (the comparison's figures are added at the end).
    write_job_report(job, output_dir / JOB_REPORT_NAME)
    storage_options = dict(options.storage_options)
    local_sources = [stage_input(source, storage_options) for source in sources]
    rendered = [render for render in job.renders if render.status != FAILED]
    info = probe_media(Path(rendered[0].output)) if rendered else None
    frame_count = info.frame_count if info else 0
    sheet_frames = sample_frame_indices(frame_count, REVIEW_PLAN.sheet_frames)
    reviews = {render.name: merge_reviews(render.reviews) for render in rendered}
    sheet = output_dir / CONTACT_SHEET_NAME
    build_contact_sheet(
        [
            ContactRow(render.name, source, *_contact_frames(render, reviews, sheet_frames))
            for render, source in zip(job.renders, local_sources, strict=True)
        ],
        sheet_frames,
        sheet,
    )
    face_sheet = output_dir / FACE_SHEET_NAME
    layout = _face_sheet(job.renders, local_sources, reviews, sheet_frames, face_sheet)
    entries = tuple(entry_for(render, reviews.get(render.name)) for render in job.renders)
    similarity = {name: review.identity for name, review in reviews.items() if review.identity}
    report = output_dir / REPORT_NAME
    fps = float(info.fps) if info is not None and info.fps else 0.0
    shown_sheet = face_sheet if layout is not None else None
    page = AbPage(target, fps, frame_count, entries, shown_sheet, sheet, similarity)
    write_ab_report(report, page)
    write_ab_json(job, entries, sheet_frames, output_dir / JOB_REPORT_NAME)
    return AbResult(job, sheet, report, similarity, shown_sheet, layout, entries)


def _contact_frames(
    render: RenderOutcome, reviews: dict[str, ChunkReview], frames: Sequence[int]
) -> tuple[Path | None, dict | None]:
    """The output and its thumbnails at the sheet's frames, when the actors took them all
    (an output rendered by an earlier run is decoded by the sheet instead)."""
    if render.status == FAILED:
        return None, None
    review = reviews.get(render.name)
    if review is None or not all(frame in review.thumbnails for frame in frames):
        return Path(render.output), None
    return Path(render.output), {frame: decode_jpeg(review.thumbnails[frame]) for frame in frames}


def _face_sheet(
    renders: Sequence[RenderOutcome],
    sources: Sequence[Path],
    reviews: dict[str, ChunkReview],
    frames: Sequence[int],
    path: Path,
) -> FaceSheetLayout | None:
    """Faces up close; the target's own faces come from the first render that took them."""
    complete = [review for review in reviews.values() if all(f in review.shots for f in frames)]
    if not complete:
        return None
    target_faces = _crops(complete[0], frames, original=True)
    rows = []
    for render, source in zip(renders, sources, strict=True):
        review = reviews.get(render.name)
        faces = _crops(review, frames, original=False) if review is not None else None
        rows.append(FaceSheetRow(render.name, source, faces))
    return build_face_sheet(target_faces, rows, frames, path)


def _crops(review: ChunkReview, frames: Sequence[int], original: bool) -> dict[int, list]:
    return {
        frame: [decode_jpeg(shot.original if original else shot.swapped) for shot in shots]
        for frame in frames
        for shots in [review.shots.get(frame, [])]
    }


def entry_for(render: RenderOutcome, review: ChunkReview | None) -> AbEntry:
    report = render.report
    figures = None
    if review is not None and render.reviews:
        figures = review_figures(review.identity, review.flicker, review.missed)
    return AbEntry(
        source=render.name,
        output=Path(render.output) if render.status != FAILED else None,
        frames_total=report.frames_total if report else 0,
        frames_swapped=report.frames_swapped if report else 0,
        seconds=report.seconds if report else 0.0,
        review=figures,
        status="ok" if render.status != FAILED else (render.error or "failed"),
    )


def write_ab_json(
    job: JobReport, entries: Sequence[AbEntry], sheet_frames: Sequence[int], path: Path
) -> None:
    """The job's report with the comparison's figures per source, and its text summary."""
    payload = job.to_dict()
    payload["comparison"] = {
        "sheet_frames": list(sheet_frames),
        "face_sheet": FACE_SHEET_NAME,
        "contact_sheet": CONTACT_SHEET_NAME,
        "page": REPORT_NAME,
        "sources": [entry.to_dict() for entry in entries],
    }
    write_bytes_atomically(path, (json.dumps(payload, indent=2) + "\n").encode())
    summary = job.summary() + "\n"
    write_bytes_atomically(path.with_suffix(".txt"), summary.encode())
