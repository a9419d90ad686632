"""A persistent onnxruntime session per model, with call counters and a provider check."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import onnxruntime as ort

from facefusion_ray.errors import ModelError
from facefusion_ray.models.store import resolve_model_path

DEFAULT_PROVIDERS: tuple[str, ...] = ("CPUExecutionProvider",)
# 3 = errors only: hides the load-time warnings about unused or input-listed initializers.
_ORT_LOG_ERRORS_ONLY = 3

# A provider is a name, or a (name, options) pair as onnxruntime accepts it.
ProviderSpec = str | tuple[str, Mapping[str, Any]]


class CallStats(TypedDict):
    calls: int
    seconds: float


class ModelSession:
    """Owns one InferenceSession, created once; `run` is safe to call from several threads."""

    def __init__(
        self,
        model_path: Path,
        name: str,
        providers: Sequence[ProviderSpec] = DEFAULT_PROVIDERS,
        intra_op_threads: int = 1,
    ) -> None:
        """`name` identifies the model in errors and `stats()` (normally its manifest id)."""
        if not providers:
            raise ModelError(f"model {name}: at least one execution provider is needed")
        self.name = name
        self.model_path = model_path
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = _ORT_LOG_ERRORS_ONLY
        provider_arguments = [
            provider if isinstance(provider, str) else (provider[0], dict(provider[1]))
            for provider in providers
        ]
        try:
            self._session = ort.InferenceSession(
                str(model_path), sess_options=options, providers=provider_arguments
            )
        except Exception as error:  # onnxruntime raises its own untyped exceptions
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            message = f"cannot load model {name} from {model_path}: {first_line}"
            raise ModelError(message) from error
        self._check_first_provider(_provider_name(providers[0]))
        self.input_names: tuple[str, ...] = tuple(i.name for i in self._session.get_inputs())
        self.output_names: tuple[str, ...] = tuple(o.name for o in self._session.get_outputs())
        self._lock = threading.Lock()
        self._calls = 0
        self._seconds = 0.0

    @classmethod
    def for_model(
        cls,
        model_id: str,
        providers: Sequence[ProviderSpec] = DEFAULT_PROVIDERS,
        intra_op_threads: int = 1,
    ) -> ModelSession:
        """Resolve (fetch, verify, prepare) the manifest's model and open a session on it."""
        return cls(resolve_model_path(model_id), model_id, providers, intra_op_threads)

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    def input_shape(self, name: str | None = None) -> tuple[int | str | None, ...]:
        inputs = {i.name: i for i in self._session.get_inputs()}
        chosen = inputs[name] if name is not None else next(iter(inputs.values()))
        return tuple(chosen.shape)

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run the model; outputs come back in `output_names` order."""
        started = time.perf_counter()
        outputs = self._session.run(None, dict(feeds))
        elapsed = time.perf_counter() - started
        with self._lock:
            self._calls += 1
            self._seconds += elapsed
        return [np.asarray(output) for output in outputs]

    def stats(self) -> dict[str, CallStats]:
        """{name: {"calls": n, "seconds": total}} since the session was created."""
        with self._lock:
            return {self.name: CallStats(calls=self._calls, seconds=self._seconds)}

    def _check_first_provider(self, requested: str) -> None:
        # onnxruntime silently falls back to CPU when a requested provider cannot start.
        active = self._session.get_providers()
        if not active or active[0] != requested:
            raise ModelError(
                f"model {self.name}: requested {requested} but the session runs on "
                f"{', '.join(active) or 'nothing'} (available here: "
                f"{', '.join(ort.get_available_providers())})"
            )


def _provider_name(provider: ProviderSpec) -> str:
    return provider if isinstance(provider, str) else provider[0]
