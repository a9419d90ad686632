"""Inference: ONNX Runtime sessions, execution providers and precision, per-model call stats."""

from facefusion_ray.inference.sessions import CallStats, ModelSession

__all__ = ["CallStats", "ModelSession"]
