"""Where and how a worker runs its models: device, precision, threads and Ray resources.

One `ExecutionConfig` per actor turns into an onnxruntime provider chain (`provider_chain`),
the choice between FP16 and FP32 model files (`wants_fp16`) and the Ray actor options that
reserve the matching share of a node (`actor_resources`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from facefusion_ray.errors import SettingsError
from facefusion_ray.option_scopes import Scope, declared
from facefusion_ray.paths import cache_root

Device = Literal["cpu", "cuda", "tensorrt"]
Precision = Literal["auto", "fp32", "fp16"]

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
TENSORRT_PROVIDER = "TensorrtExecutionProvider"
GPU_PROVIDERS = frozenset({CUDA_PROVIDER, TENSORRT_PROVIDER})

# Ray sets CUDA_VISIBLE_DEVICES to the GPU it assigned, so that GPU is always device 0 inside
# the actor, whatever its index on the node.
ACTOR_DEVICE_ID = 0

# onnxruntime accepts a provider as a bare name or as (name, options); it passes option values
# to the provider as strings, so they are built as strings here and compared as such in tests.
ProviderEntry = str | tuple[str, dict[str, str]]


@dataclass(frozen=True)
class ExecutionConfig:
    """How one worker runs its models. Invalid values raise `SettingsError` on construction.

    gpu_memory_limit_bytes caps onnxruntime's CUDA arena (and the TensorRT workspace);
    gpu_fraction and memory_bytes are what the actor reserves from Ray (`num_gpus`, `memory`).
    """

    # FP16 sessions on a GPU give (slightly) different pixels than FP32 ones on a CPU.
    device: Device = declared("cpu", Scope.PIXELS)
    allow_cpu_fallback: bool = declared(False, Scope.NEITHER)
    intra_op_threads: int = declared(1, Scope.NEITHER)
    gpu_memory_limit_bytes: int | None = declared(None, Scope.NEITHER)
    gpu_fraction: float | None = declared(None, Scope.NEITHER)
    memory_bytes: int | None = declared(None, Scope.NEITHER)
    cpu_arena: bool = declared(True, Scope.NEITHER)
    tensorrt_cache_dir: Path | None = declared(None, Scope.NEITHER)
    precision: Precision = declared("auto", Scope.PIXELS)

    def __post_init__(self) -> None:
        _require_choice("device", self.device, get_args(Device))
        _require_choice("precision", self.precision, get_args(Precision))
        _require_flag("allow_cpu_fallback", self.allow_cpu_fallback)
        _require_flag("cpu_arena", self.cpu_arena)
        # 0 would let onnxruntime use every core of the node, overrunning the actor's num_cpus.
        _require_positive_int("intra_op_threads", self.intra_op_threads)
        if self.gpu_memory_limit_bytes is not None:
            _require_positive_int("gpu_memory_limit_bytes", self.gpu_memory_limit_bytes)
        if self.memory_bytes is not None:
            _require_positive_int("memory_bytes", self.memory_bytes)
        if self.gpu_fraction is not None:
            _require_gpu_fraction(self.gpu_fraction)
        if self.device == "cpu":
            for name in ("gpu_fraction", "gpu_memory_limit_bytes"):
                if getattr(self, name) is not None:
                    raise SettingsError(f"{name} only applies to device cuda or tensorrt, not cpu")
        if self.tensorrt_cache_dir is not None:
            if not isinstance(self.tensorrt_cache_dir, str | Path):
                raise SettingsError(
                    f"tensorrt_cache_dir must be a path, got {self.tensorrt_cache_dir!r}"
                )
            object.__setattr__(self, "tensorrt_cache_dir", Path(self.tensorrt_cache_dir))

    @property
    def uses_gpu(self) -> bool:
        return self.device != "cpu"


def wants_fp16(config: ExecutionConfig) -> bool:
    """FP16 model files on GPU devices, FP32 on CPU, unless the precision is set explicitly."""
    if config.precision == "auto":
        return config.uses_gpu
    return config.precision == "fp16"


def tensorrt_cache_path(config: ExecutionConfig) -> Path:
    """Engine and timing caches: per node, so each GPU type builds its engines once."""
    return config.tensorrt_cache_dir or cache_root() / "tensorrt"


def provider_chain(config: ExecutionConfig) -> list[ProviderEntry]:
    """onnxruntime providers in priority order; the last one is always the CPU provider."""
    if config.device == "cpu":
        return [CPU_PROVIDER]
    cuda: ProviderEntry = (CUDA_PROVIDER, cuda_provider_options(config))
    if config.device == "cuda":
        return [cuda, CPU_PROVIDER]
    return [(TENSORRT_PROVIDER, tensorrt_provider_options(config)), cuda, CPU_PROVIDER]


def cuda_provider_options(config: ExecutionConfig) -> dict[str, str]:
    options = {
        "device_id": str(ACTOR_DEVICE_ID),
        # Grow the arena by what is asked for, not to the next power of two: several actors
        # may share one GPU, and doubling can overshoot their share by up to 2x.
        "arena_extend_strategy": "kSameAsRequested",
        # Face models see fixed input sizes, so the one-off exhaustive search per conv shape
        # is paid once per actor and then reused for every frame.
        "cudnn_conv_algo_search": "EXHAUSTIVE",
        # onnxruntime's default; separate copy streams can race (onnxruntime issue #4829).
        "do_copy_in_default_stream": "True",
    }
    if config.gpu_memory_limit_bytes is not None:
        options["gpu_mem_limit"] = str(config.gpu_memory_limit_bytes)
    return options


def tensorrt_provider_options(config: ExecutionConfig) -> dict[str, str]:
    cache_dir = str(tensorrt_cache_path(config))
    options = {
        "device_id": str(ACTOR_DEVICE_ID),
        "trt_fp16_enable": str(wants_fp16(config)),
        # Building an engine takes minutes; the caches make a restarted actor start in seconds.
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": cache_dir,
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": cache_dir,
    }
    if config.gpu_memory_limit_bytes is not None:
        options["trt_max_workspace_size"] = str(config.gpu_memory_limit_bytes)
    return options


def actor_resources(config: ExecutionConfig, cpus: int) -> dict[str, Any]:
    """Options for `ray.remote(...)` / `.options(...)` of an actor that runs with `config`."""
    if isinstance(cpus, bool) or not isinstance(cpus, int | float) or cpus < 0:
        raise SettingsError(f"cpus must be a number >= 0, got {cpus!r}")
    resources: dict[str, Any] = {"num_cpus": cpus}
    if config.uses_gpu:
        resources["num_gpus"] = config.gpu_fraction if config.gpu_fraction is not None else 1
    if config.memory_bytes is not None:
        resources["memory"] = config.memory_bytes
    return resources


def _require_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _require_flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise SettingsError(f"{name} must be true or false, got {value!r}")


def _require_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingsError(f"{name} must be a whole number >= 1, got {value!r}")


def _require_gpu_fraction(value: object) -> None:
    # Above 1 an actor would hold several GPUs while its sessions only ever use device 0.
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise SettingsError(f"gpu_fraction must be in (0, 1], got {value!r}")
