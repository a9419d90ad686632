"""Per-frame face analysis cached as Parquet in an object store, keyed by content."""

from facefusion_ray.cache.analysis_chunks import AnalysisCache
from facefusion_ray.cache.fingerprints import video_fingerprint
from facefusion_ray.cache.schema import SCHEMA_VERSION, FrameAnalysis

__all__ = [
    "SCHEMA_VERSION",
    "AnalysisCache",
    "FrameAnalysis",
    "video_fingerprint",
]
