"""Comparing renders of one target with several sources: identity similarity of the swapped
faces, a contact sheet of sampled frames and an HTML report."""

from facefusion_ray.comparison.contact_sheet import ContactRow, build_contact_sheet
from facefusion_ray.comparison.frames import iter_selected_frames
from facefusion_ray.comparison.html_report import AbEntry, write_ab_report
from facefusion_ray.comparison.similarity import (
    SimilarityStats,
    measure_identity_similarity,
    similarity_stats,
    source_embedding_for,
)
from facefusion_ray.media.frame_sampling import sample_frame_indices

__all__ = [
    "AbEntry",
    "ContactRow",
    "SimilarityStats",
    "build_contact_sheet",
    "iter_selected_frames",
    "measure_identity_similarity",
    "sample_frame_indices",
    "similarity_stats",
    "source_embedding_for",
    "write_ab_report",
]
