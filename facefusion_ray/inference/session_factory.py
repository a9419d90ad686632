"""The sessions of one worker: opened lazily on first use, kept for the worker's life.

The factory knows nothing about the manifest: it is given `resolve_model(model_id, variant)`,
which returns a verified local ONNX file (variant None = the base FP32 file), and optionally
which variant holds a model's FP16 weights.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal, TypedDict

import numpy as np

from facefusion_ray.inference.execution import ExecutionConfig, wants_fp16
from facefusion_ray.inference.sessions import ModelSession, SessionOpener, open_inference_session

ModelResolver = Callable[[str, str | None], Path]
# model_id -> name of the variant with FP16 weights, or None when the model has none.
Fp16VariantLookup = Callable[[str], str | None] | Mapping[str, str]


class ModelUsage(TypedDict):
    calls: int
    seconds: float
    provider: str
    precision: Literal["fp16", "fp32"]
    fallback: str | None


class SessionFactory:
    """`get(model_id)` opens the model's session on first use (FP16 file on GPU when the model
    has an FP16 variant, FP32 otherwise) and returns the same session afterwards."""

    def __init__(
        self,
        config: ExecutionConfig,
        resolve_model: ModelResolver,
        fp16_variant: Fp16VariantLookup | None = None,
        *,
        open_session: SessionOpener = open_inference_session,
    ) -> None:
        """Without `fp16_variant` no model has an FP16 variant and FP32 files are used."""
        self.config = config
        self._resolve_model = resolve_model
        self._fp16_variant = fp16_variant
        self._open_session = open_session
        self._sessions: dict[str, ModelSession] = {}
        self._fp16_paths: dict[str, Path] = {}
        self._lock = threading.Lock()
        # Sessions opened over the factory's life and the seconds it took (start-up cost).
        self.opened = 0
        self.open_seconds = 0.0

    def get(self, model_id: str) -> ModelSession:
        with self._lock:
            session = self._sessions.get(model_id)
            if session is None:
                started = time.perf_counter()
                session = self._open(model_id)
                self.open_seconds += time.perf_counter() - started
                self.opened += 1
                self._sessions[model_id] = session
            return session

    def run(self, model_id: str, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """`get(model_id).run(feeds)`: on GPU out-of-memory with fallback allowed, the session
        moves to CPU (FP32 file) and the run is retried once."""
        return self.get(model_id).run(feeds)

    def run_bound(self, model_id: str, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return self.get(model_id).run_bound(feeds)

    def stats(self) -> dict[str, ModelUsage]:
        """Per loaded model: calls, seconds, the provider it runs on, file precision, fallback."""
        with self._lock:
            sessions = dict(self._sessions)
        usage: dict[str, ModelUsage] = {}
        for model_id, session in sessions.items():
            counters = session.stats()[session.name]
            usage[model_id] = ModelUsage(
                calls=counters["calls"],
                seconds=counters["seconds"],
                provider=session.providers[0],
                precision="fp16"
                if session.model_path == self._fp16_paths.get(model_id)
                else "fp32",
                fallback=session.fallback_reason,
            )
        return usage

    def _open(self, model_id: str) -> ModelSession:
        variant = self._fp16_variant_of(model_id) if wants_fp16(self.config) else None
        model_path = self._resolve_model(model_id, variant)
        if variant is not None:
            self._fp16_paths[model_id] = model_path

        def resolve_fp32_model() -> Path:
            return self._resolve_model(model_id, None)

        return ModelSession.from_config(
            model_path,
            model_id,
            self.config,
            # Resolved only if the session does fall back, so GPU nodes never fetch FP32 files.
            cpu_model_path=resolve_fp32_model if variant is not None else None,
            open_session=self._open_session,
        )

    def _fp16_variant_of(self, model_id: str) -> str | None:
        if self._fp16_variant is None:
            return None
        if callable(self._fp16_variant):
            return self._fp16_variant(model_id)
        return self._fp16_variant.get(model_id)
