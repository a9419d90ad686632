"""A persistent onnxruntime session per model: provider check, CPU fallback, I/O binding."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypedDict, TypeVar

import numpy as np
import onnxruntime as ort

from facefusion_ray.errors import ModelError
from facefusion_ray.inference.execution import (
    ACTOR_DEVICE_ID,
    CPU_PROVIDER,
    GPU_PROVIDERS,
    ExecutionConfig,
    provider_chain,
    tensorrt_cache_path,
)

logger = logging.getLogger(__name__)

DEFAULT_PROVIDERS: tuple[str, ...] = (CPU_PROVIDER,)
# 3 = errors only: hides the load-time warnings about unused or input-listed initializers.
_ORT_LOG_ERRORS_ONLY = 3
# How onnxruntime's CUDA/TensorRT providers word an allocation failure (lower-cased).
_OUT_OF_MEMORY_MARKERS = ("failed to allocate memory", "out of memory", "cuda failure 2")

# A provider is a name, or a (name, options) pair as onnxruntime accepts it.
ProviderSpec = str | tuple[str, Mapping[str, Any]]
_Result = TypeVar("_Result")


class InferenceRunner(Protocol):
    """The part of `onnxruntime.InferenceSession` that `ModelSession` uses."""

    def run(self, output_names: Sequence[str] | None, input_feed: dict[str, Any]) -> list[Any]: ...

    def get_providers(self) -> list[str]: ...

    def get_inputs(self) -> list[Any]: ...

    def get_outputs(self) -> list[Any]: ...

    def io_binding(self) -> Any: ...

    def run_with_iobinding(self, iobinding: Any) -> None: ...


# (model file, session options, providers) -> session. Tests pass their own to simulate GPUs.
SessionOpener = Callable[[Path, ort.SessionOptions, Sequence[ProviderSpec]], InferenceRunner]


def open_inference_session(
    model_path: Path, options: ort.SessionOptions, providers: Sequence[ProviderSpec]
) -> InferenceRunner:
    arguments = [
        provider if isinstance(provider, str) else (provider[0], dict(provider[1]))
        for provider in providers
    ]
    return ort.InferenceSession(str(model_path), sess_options=options, providers=arguments)


class CallStats(TypedDict):
    """`calls`/`seconds` count every run; `bound_*` is the share that went through `run_bound`."""

    calls: int
    seconds: float
    bound_calls: int
    bound_seconds: float


def is_out_of_memory(error: BaseException) -> bool:
    message = str(error).lower()
    return any(marker in message for marker in _OUT_OF_MEMORY_MARKERS)


class ModelSession:
    """Owns one InferenceSession, created once; `run` is safe to call from several threads.

    The first provider is the one asked for. If onnxruntime cannot start it (it silently moves
    to the next provider), the session raises ModelError, or with `allow_cpu_fallback` reopens
    on CPU with `cpu_model_path` (the FP32 file; default: `model_path`) and records why in
    `fallback_reason`. With fallback allowed, a GPU run that runs out of memory also moves the
    session to CPU and is retried once.
    """

    def __init__(
        self,
        model_path: Path,
        name: str,
        providers: Sequence[ProviderSpec] = DEFAULT_PROVIDERS,
        intra_op_threads: int = 1,
        *,
        cpu_arena: bool = True,
        allow_cpu_fallback: bool = False,
        cpu_model_path: Path | Callable[[], Path] | None = None,
        open_session: SessionOpener = open_inference_session,
    ) -> None:
        """`name` identifies the model in errors and `stats()` (normally its manifest id)."""
        if not providers:
            raise ModelError(f"model {name}: at least one execution provider is needed")
        self.name = name
        self.model_path = model_path
        self.fallback_reason: str | None = None
        self._allow_cpu_fallback = allow_cpu_fallback
        self._cpu_model_path = cpu_model_path
        self._open_session = open_session
        self._options = _session_options(intra_op_threads, cpu_arena)
        self._stats_lock = threading.Lock()
        self._replace_lock = threading.Lock()
        self._calls = 0
        self._seconds = 0.0
        self._bound_calls = 0
        self._bound_seconds = 0.0
        self._runner = self._open_requested(model_path, providers)
        self._describe_io()

    @classmethod
    def from_config(
        cls,
        model_path: Path,
        name: str,
        config: ExecutionConfig,
        *,
        cpu_model_path: Path | Callable[[], Path] | None = None,
        open_session: SessionOpener = open_inference_session,
    ) -> ModelSession:
        """A session with the providers, threads, arena and fallback policy of `config`."""
        if config.device == "tensorrt":
            # Created up front so the TensorRT provider never depends on making parent folders.
            tensorrt_cache_path(config).mkdir(parents=True, exist_ok=True)
        return cls(
            model_path,
            name,
            provider_chain(config),
            config.intra_op_threads,
            cpu_arena=config.cpu_arena,
            allow_cpu_fallback=config.allow_cpu_fallback,
            cpu_model_path=cpu_model_path,
            open_session=open_session,
        )

    @property
    def providers(self) -> list[str]:
        return list(self._runner.get_providers())

    def input_shape(self, name: str | None = None) -> tuple[int | str | None, ...]:
        inputs = {i.name: i for i in self._runner.get_inputs()}
        chosen = inputs[name] if name is not None else next(iter(inputs.values()))
        return tuple(chosen.shape)

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run the model; outputs come back in `output_names` order."""
        started = time.perf_counter()
        outputs = self._call_with_memory_fallback(lambda runner: runner.run(None, dict(feeds)))
        self._count(time.perf_counter() - started, bound=False)
        return [np.asarray(output) for output in outputs]

    def run_bound(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Same as `run`, through I/O binding: inputs are copied to the session's device once,
        outputs are allocated there and copied back once. On CPU it equals `run`."""
        started = time.perf_counter()
        outputs = self._call_with_memory_fallback(lambda runner: _run_with_binding(runner, feeds))
        self._count(time.perf_counter() - started, bound=True)
        return outputs

    def stats(self) -> dict[str, CallStats]:
        """{name: {"calls", "seconds", "bound_calls", "bound_seconds"}} since creation."""
        with self._stats_lock:
            return {
                self.name: CallStats(
                    calls=self._calls,
                    seconds=self._seconds,
                    bound_calls=self._bound_calls,
                    bound_seconds=self._bound_seconds,
                )
            }

    def _open_requested(
        self, model_path: Path, providers: Sequence[ProviderSpec]
    ) -> InferenceRunner:
        requested = _provider_name(providers[0])
        available = ort.get_available_providers()
        if requested != CPU_PROVIDER and requested not in available:
            # Asking onnxruntime anyway would only load the model on CPU behind a UserWarning.
            return self._fall_back_or_fail(
                f"requested {requested} but this onnxruntime build does not have it "
                f"(available: {', '.join(available)})"
            )
        try:
            runner = self._open_session(model_path, self._options, providers)
        except Exception as error:  # onnxruntime raises its own untyped exceptions
            if requested in GPU_PROVIDERS and self._allow_cpu_fallback and is_out_of_memory(error):
                return self._fall_back_to_cpu(
                    f"requested {requested} but loading ran out of GPU memory "
                    f"({_first_line(error)})"
                )
            message = f"cannot load model {self.name} from {model_path}: {_first_line(error)}"
            raise ModelError(message) from error
        active = list(runner.get_providers())
        if active and active[0] == requested:
            return runner
        reason = (
            f"requested {requested} but the session runs on {', '.join(active) or 'nothing'} "
            f"(available: {', '.join(available)})"
        )
        if self._allow_cpu_fallback and active and active[0] in GPU_PROVIDERS:
            # TensorRT could not start but CUDA did: still a GPU, and the same model file.
            self._record_fallback(reason)
            return runner
        return self._fall_back_or_fail(reason)

    def _fall_back_or_fail(self, reason: str) -> InferenceRunner:
        if not self._allow_cpu_fallback:
            raise ModelError(f"model {self.name}: {reason}")
        return self._fall_back_to_cpu(reason)

    def _fall_back_to_cpu(self, reason: str) -> InferenceRunner:
        cpu_model_path = self._resolve_cpu_model_path()
        try:
            runner = self._open_session(cpu_model_path, self._options, [CPU_PROVIDER])
        except Exception as error:
            raise ModelError(
                f"model {self.name}: {reason}, and loading {cpu_model_path} on CPU failed: "
                f"{_first_line(error)}"
            ) from error
        self.model_path = cpu_model_path
        self._record_fallback(f"{reason}; running on {CPU_PROVIDER} with {cpu_model_path.name}")
        return runner

    def _resolve_cpu_model_path(self) -> Path:
        if self._cpu_model_path is None:
            return self.model_path
        if isinstance(self._cpu_model_path, Path):
            return self._cpu_model_path
        return self._cpu_model_path()

    def _record_fallback(self, reason: str) -> None:
        logger.warning("model %s: %s", self.name, reason)
        self.fallback_reason = (
            reason if self.fallback_reason is None else f"{self.fallback_reason}; then {reason}"
        )

    def _call_with_memory_fallback(self, call: Callable[[InferenceRunner], _Result]) -> _Result:
        runner = self._runner
        try:
            return call(runner)
        except Exception as error:
            if not (_runs_on_gpu(runner) and is_out_of_memory(error)):
                raise
            if not self._allow_cpu_fallback:
                raise ModelError(
                    f"model {self.name}: out of GPU memory on {runner.get_providers()[0]} "
                    f"({_first_line(error)})"
                ) from error
            cpu_runner = self._move_to_cpu_after_out_of_memory(runner, error)
        return call(cpu_runner)

    def _move_to_cpu_after_out_of_memory(
        self, failed_runner: InferenceRunner, error: Exception
    ) -> InferenceRunner:
        with self._replace_lock:
            # Several threads may hit the same failure; only the first one reopens the session.
            if self._runner is failed_runner:
                provider = failed_runner.get_providers()[0]
                self._runner = self._fall_back_to_cpu(
                    f"{provider} ran out of memory during a run ({_first_line(error)})"
                )
                self._describe_io()
            return self._runner

    def _describe_io(self) -> None:
        self.input_names: tuple[str, ...] = tuple(i.name for i in self._runner.get_inputs())
        self.output_names: tuple[str, ...] = tuple(o.name for o in self._runner.get_outputs())

    def _count(self, seconds: float, *, bound: bool) -> None:
        with self._stats_lock:
            self._calls += 1
            self._seconds += seconds
            if bound:
                self._bound_calls += 1
                self._bound_seconds += seconds


def _session_options(intra_op_threads: int, cpu_arena: bool) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = cpu_arena
    options.log_severity_level = _ORT_LOG_ERRORS_ONLY
    return options


def _run_with_binding(runner: InferenceRunner, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    device = "cuda" if _runs_on_gpu(runner) else "cpu"
    binding = runner.io_binding()
    # The OrtValues must stay referenced until the run ends: on CPU they wrap the arrays' memory.
    inputs = {
        name: ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), device, ACTOR_DEVICE_ID)
        for name, array in feeds.items()
    }
    for name, value in inputs.items():
        binding.bind_ortvalue_input(name, value)
    for output in runner.get_outputs():
        binding.bind_output(output.name, device, ACTOR_DEVICE_ID)
    runner.run_with_iobinding(binding)
    return list(binding.copy_outputs_to_cpu())


def _runs_on_gpu(runner: InferenceRunner) -> bool:
    active = runner.get_providers()
    return bool(active) and active[0] in GPU_PROVIDERS


def _provider_name(provider: ProviderSpec) -> str:
    return provider if isinstance(provider, str) else provider[0]


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
