"""Execution config, provider chains, sessions and the session factory, on stand-in models.

The stand-ins are tiny Conv + Add / MatMul + Add graphs written by the tests (IR version 10,
which onnxruntime 1.31 accepts), plus an FP16 copy of the conv model. They are not real models.

This machine has no GPU. Two seams stand in for one:
- `onnxruntime.get_available_providers` is patched to list CUDA, so that onnxruntime itself is
  asked for CUDA and (silently) falls back to CPU, which the session must notice;
- an `open_session` callable returns `PretendGpuSession`: a real CPU session that reports
  CUDA as its provider and whose first runs raise onnxruntime's CUDA out-of-memory error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.transformers.float16 import convert_float_to_float16

from facefusion_ray.errors import ModelError, SettingsError
from facefusion_ray.inference.execution import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    TENSORRT_PROVIDER,
    ExecutionConfig,
    actor_resources,
    provider_chain,
    wants_fp16,
)
from facefusion_ray.inference.session_factory import SessionFactory
from facefusion_ray.inference.sessions import (
    InferenceRunner,
    ModelSession,
    ProviderSpec,
    is_out_of_memory,
    open_inference_session,
)
from facefusion_ray.paths import CACHE_ENV

# Worded as onnxruntime's CUDA allocator reports an exhausted arena.
ORT_CUDA_OUT_OF_MEMORY = (
    "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running "
    "Conv node. Name:'conv' Status Message: CUDA error cudaErrorMemoryAllocation:out of memory; "
    "/onnxruntime/core/framework/bfc_arena.cc:376 Failed to allocate memory for requested buffer"
)
GIB = 1024**3


@pytest.fixture(scope="module")
def stand_in_models(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str | None], Path]:
    """(model id, variant) -> file, as a model store would resolve them."""
    folder = tmp_path_factory.mktemp("stand_in_models")
    rng = np.random.default_rng(3)
    conv_fp32 = _conv_add_model(rng)
    conv_fp16 = convert_float_to_float16(conv_fp32, keep_io_types=True)
    paths = {
        ("conv", None): folder / "conv.onnx",
        ("conv", "fp16"): folder / "conv_fp16.onnx",
        ("matmul", None): folder / "matmul.onnx",
    }
    onnx.save(conv_fp32, paths["conv", None])
    onnx.save(conv_fp16, paths["conv", "fp16"])
    onnx.save(_matmul_add_model(rng), paths["matmul", None])
    return paths


@pytest.fixture
def conv_input() -> np.ndarray:
    return np.random.default_rng(5).standard_normal((1, 3, 16, 16)).astype(np.float32)


class RecordingResolver:
    """`resolve_model` for the factory: looks up the stand-ins and remembers every request."""

    def __init__(self, models: dict[tuple[str, str | None], Path]) -> None:
        self.models = models
        self.requests: list[tuple[str, str | None]] = []

    def __call__(self, model_id: str, variant: str | None) -> Path:
        self.requests.append((model_id, variant))
        return self.models[model_id, variant]


class PretendGpuSession:
    """A real CPU session that reports CUDA first and fails its first `failing_runs` runs the
    way onnxruntime does when the CUDA arena is exhausted."""

    def __init__(self, inner: InferenceRunner, failing_runs: int) -> None:
        self._inner = inner
        self.failing_runs = failing_runs

    def get_providers(self) -> list[str]:
        return [CUDA_PROVIDER, CPU_PROVIDER]

    def run(self, output_names: Sequence[str] | None, input_feed: dict[str, Any]) -> list[Any]:
        if self.failing_runs > 0:
            self.failing_runs -= 1
            raise RuntimeError(ORT_CUDA_OUT_OF_MEMORY)
        return self._inner.run(output_names, input_feed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class PretendGpuOpener:
    """`open_session` that hands out `PretendGpuSession`s whenever a GPU provider comes first."""

    def __init__(self, failing_runs: int = 0) -> None:
        self.failing_runs = failing_runs
        self.opened: list[tuple[Path, str]] = []
        self.options: list[ort.SessionOptions] = []

    def __call__(
        self, model_path: Path, options: ort.SessionOptions, providers: Sequence[ProviderSpec]
    ) -> InferenceRunner:
        first = providers[0] if isinstance(providers[0], str) else providers[0][0]
        self.opened.append((model_path, first))
        self.options.append(options)
        cpu_session = open_inference_session(model_path, options, [CPU_PROVIDER])
        if first == CPU_PROVIDER:
            return cpu_session
        return PretendGpuSession(cpu_session, self.failing_runs)


@pytest.fixture
def cuda_listed_as_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        ort, "get_available_providers", lambda: [CUDA_PROVIDER, TENSORRT_PROVIDER, CPU_PROVIDER]
    )


# --- configuration -------------------------------------------------------------------------


def test_cpu_chain_is_only_the_cpu_provider() -> None:
    assert provider_chain(ExecutionConfig()) == [CPU_PROVIDER]


def test_cuda_chain_uses_device_zero_and_the_memory_limit() -> None:
    chain = provider_chain(ExecutionConfig(device="cuda", gpu_memory_limit_bytes=3 * GIB))

    assert chain == [
        (
            CUDA_PROVIDER,
            {
                "device_id": "0",
                "arena_extend_strategy": "kSameAsRequested",
                "cudnn_conv_algo_search": "EXHAUSTIVE",
                "do_copy_in_default_stream": "True",
                "gpu_mem_limit": str(3 * GIB),
            },
        ),
        CPU_PROVIDER,
    ]
    assert "gpu_mem_limit" not in provider_chain(ExecutionConfig(device="cuda"))[0][1]


def test_tensorrt_chain_caches_fp16_engines_in_the_node_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))

    chain = provider_chain(ExecutionConfig(device="tensorrt", gpu_memory_limit_bytes=GIB))

    assert [entry if isinstance(entry, str) else entry[0] for entry in chain] == [
        TENSORRT_PROVIDER,
        CUDA_PROVIDER,
        CPU_PROVIDER,
    ]
    tensorrt_options = chain[0][1]
    assert tensorrt_options == {
        "device_id": "0",
        "trt_fp16_enable": "True",
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(tmp_path / "tensorrt"),
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(tmp_path / "tensorrt"),
        "trt_max_workspace_size": str(GIB),
    }
    assert chain[1][1]["device_id"] == "0"
    assert chain[1][1]["gpu_mem_limit"] == str(GIB)


def test_tensorrt_options_follow_precision_and_cache_dir(tmp_path: Path) -> None:
    config = ExecutionConfig(device="tensorrt", precision="fp32", tensorrt_cache_dir=tmp_path)

    options = provider_chain(config)[0][1]

    assert options["trt_fp16_enable"] == "False"
    assert options["trt_engine_cache_path"] == str(tmp_path)


@pytest.mark.parametrize(
    ("device", "precision", "expected"),
    [
        ("cpu", "auto", False),
        ("cuda", "auto", True),
        ("tensorrt", "auto", True),
        ("cuda", "fp32", False),
        ("cpu", "fp16", True),
    ],
)
def test_precision(device: Any, precision: Any, expected: bool) -> None:
    assert wants_fp16(ExecutionConfig(device=device, precision=precision)) is expected


def test_actor_resources() -> None:
    import ray

    cpu = actor_resources(ExecutionConfig(), cpus=2)
    cuda = actor_resources(
        ExecutionConfig(device="cuda", gpu_fraction=0.5, memory_bytes=4 * GIB), cpus=1
    )

    assert cpu == {"num_cpus": 2}
    assert cuda == {"num_cpus": 1, "num_gpus": 0.5, "memory": 4 * GIB}
    assert actor_resources(ExecutionConfig(device="tensorrt"), cpus=1)["num_gpus"] == 1

    class Worker:
        pass

    # Ray validates actor option names and values without a running cluster.
    ray.remote(Worker).options(**cpu)
    ray.remote(Worker).options(**cuda)


@pytest.mark.parametrize(
    "arguments",
    [
        {"device": "rocm"},
        {"precision": "bf16"},
        {"intra_op_threads": 0},
        {"intra_op_threads": 1.5},
        {"intra_op_threads": True},
        {"allow_cpu_fallback": "yes"},
        {"device": "cuda", "gpu_fraction": 0},
        {"device": "cuda", "gpu_fraction": 1.5},
        {"device": "cuda", "gpu_memory_limit_bytes": 0},
        {"gpu_fraction": 0.5},
        {"gpu_memory_limit_bytes": GIB},
        {"memory_bytes": -1},
        {"tensorrt_cache_dir": 3},
    ],
)
def test_invalid_config_is_a_settings_error(arguments: dict[str, Any]) -> None:
    with pytest.raises(SettingsError):
        ExecutionConfig(**arguments)


def test_negative_cpus_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="cpus"):
        actor_resources(ExecutionConfig(), cpus=-1)


# --- sessions --------------------------------------------------------------------------------


def test_session_options_come_from_the_config(
    stand_in_models: dict, conv_input: np.ndarray
) -> None:
    opener = PretendGpuOpener()
    config = ExecutionConfig(intra_op_threads=2, cpu_arena=False)

    session = ModelSession.from_config(
        stand_in_models["conv", None], "conv", config, open_session=opener
    )

    options = opener.options[0]
    assert options.intra_op_num_threads == 2
    assert options.enable_cpu_mem_arena is False
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert session.providers == [CPU_PROVIDER]
    assert session.run({"input": conv_input})[0].shape == (1, 4, 16, 16)


def test_fp16_stand_in_agrees_with_fp32(stand_in_models: dict, conv_input: np.ndarray) -> None:
    fp32 = ModelSession(stand_in_models["conv", None], "conv")
    fp16 = ModelSession(stand_in_models["conv", "fp16"], "conv fp16")

    assert fp16.input_names == fp32.input_names
    np.testing.assert_allclose(
        fp16.run({"input": conv_input})[0], fp32.run({"input": conv_input})[0], atol=0.05
    )


def test_run_bound_equals_run_and_both_are_counted(
    stand_in_models: dict, conv_input: np.ndarray
) -> None:
    session = ModelSession(stand_in_models["conv", None], "conv")

    plain = session.run({"input": conv_input})
    bound = session.run_bound({"input": conv_input})
    session.run({"input": conv_input})

    assert len(bound) == len(plain) == 1
    np.testing.assert_array_equal(bound[0], plain[0])
    stats = session.stats()["conv"]
    assert stats["calls"] == 3
    assert stats["bound_calls"] == 1
    assert stats["seconds"] >= stats["bound_seconds"] > 0


def test_run_bound_accepts_non_contiguous_input(stand_in_models: dict) -> None:
    session = ModelSession(stand_in_models["conv", None], "conv")
    wide = np.random.default_rng(9).standard_normal((1, 3, 16, 32)).astype(np.float32)
    strided = wide[..., ::2]

    np.testing.assert_array_equal(
        session.run_bound({"input": strided})[0], session.run({"input": strided})[0]
    )


@pytest.mark.filterwarnings("ignore:Specified provider")
@pytest.mark.usefixtures("cuda_listed_as_available")
def test_cuda_that_onnxruntime_quietly_replaced_is_an_error(stand_in_models: dict) -> None:
    # onnxruntime is really asked for CUDA here and answers with a CPU-only session.
    with pytest.raises(ModelError, match=r"model conv: requested CUDAExecutionProvider but"):
        ModelSession.from_config(stand_in_models["conv", "fp16"], "conv", ExecutionConfig("cuda"))


def test_cuda_missing_from_this_build_is_an_error(stand_in_models: dict) -> None:
    with pytest.raises(ModelError) as raised:
        ModelSession.from_config(stand_in_models["conv", "fp16"], "conv", ExecutionConfig("cuda"))

    message = str(raised.value)
    assert message.startswith("model conv: requested CUDAExecutionProvider but")
    assert "(available: " in message and CPU_PROVIDER in message


@pytest.mark.filterwarnings("ignore:Specified provider")
@pytest.mark.usefixtures("cuda_listed_as_available")
def test_quiet_cpu_fallback_reopens_the_fp32_file(
    stand_in_models: dict, conv_input: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    config = ExecutionConfig(device="cuda", allow_cpu_fallback=True)

    with caplog.at_level(logging.WARNING, logger="facefusion_ray.inference.sessions"):
        session = ModelSession.from_config(
            stand_in_models["conv", "fp16"],
            "conv",
            config,
            cpu_model_path=stand_in_models["conv", None],
        )

    assert session.providers == [CPU_PROVIDER]
    assert session.model_path == stand_in_models["conv", None]
    assert session.fallback_reason is not None
    assert "requested CUDAExecutionProvider" in session.fallback_reason
    assert "conv.onnx" in session.fallback_reason
    assert any("requested CUDAExecutionProvider" in r.message for r in caplog.records)
    assert session.run({"input": conv_input})[0].shape == (1, 4, 16, 16)


def test_out_of_memory_messages_are_recognised() -> None:
    assert is_out_of_memory(RuntimeError(ORT_CUDA_OUT_OF_MEMORY))
    assert is_out_of_memory(RuntimeError("CUDA failure 2: out of memory ; GPU=0"))
    assert not is_out_of_memory(RuntimeError("Invalid input name: image"))


@pytest.mark.usefixtures("cuda_listed_as_available")
def test_out_of_memory_without_fallback_is_a_model_error(
    stand_in_models: dict, conv_input: np.ndarray
) -> None:
    session = ModelSession.from_config(
        stand_in_models["conv", "fp16"],
        "conv",
        ExecutionConfig(device="cuda"),
        open_session=PretendGpuOpener(failing_runs=1),
    )

    with pytest.raises(ModelError, match="out of GPU memory on CUDAExecutionProvider"):
        session.run({"input": conv_input})


@pytest.mark.usefixtures("cuda_listed_as_available")
def test_out_of_memory_while_loading_falls_back_to_cpu(stand_in_models: dict) -> None:
    def exhausted_gpu(
        model_path: Path, options: ort.SessionOptions, providers: Sequence[ProviderSpec]
    ) -> InferenceRunner:
        if providers[0] != CPU_PROVIDER:
            raise RuntimeError(ORT_CUDA_OUT_OF_MEMORY)
        return open_inference_session(model_path, options, providers)

    session = ModelSession.from_config(
        stand_in_models["conv", "fp16"],
        "conv",
        ExecutionConfig(device="cuda", allow_cpu_fallback=True),
        cpu_model_path=stand_in_models["conv", None],
        open_session=exhausted_gpu,
    )

    assert session.providers == [CPU_PROVIDER]
    assert session.fallback_reason is not None
    assert "loading ran out of GPU memory" in session.fallback_reason


# --- factory ---------------------------------------------------------------------------------


def test_factory_opens_models_lazily_and_once(stand_in_models: dict) -> None:
    resolver = RecordingResolver(stand_in_models)
    factory = SessionFactory(ExecutionConfig(), resolver)

    assert resolver.requests == []
    first = factory.get("conv")
    second = factory.get("conv")

    assert first is second
    assert resolver.requests == [("conv", None)]
    assert list(factory.stats()) == ["conv"]


def test_factory_counts_calls_per_model(stand_in_models: dict, conv_input: np.ndarray) -> None:
    factory = SessionFactory(ExecutionConfig(), RecordingResolver(stand_in_models))

    factory.run("conv", {"input": conv_input})
    factory.run_bound("conv", {"input": conv_input})
    factory.run("matmul", {"features": np.ones((2, 8), np.float32)})

    stats = factory.stats()
    assert stats["conv"]["calls"] == 2
    assert stats["conv"]["seconds"] > 0
    assert stats["matmul"]["calls"] == 1
    assert stats["conv"]["provider"] == CPU_PROVIDER
    assert stats["conv"]["precision"] == "fp32"
    assert stats["conv"]["fallback"] is None


@pytest.mark.usefixtures("cuda_listed_as_available")
def test_factory_uses_fp16_variant_on_gpu(stand_in_models: dict) -> None:
    resolver = RecordingResolver(stand_in_models)
    opener = PretendGpuOpener()
    factory = SessionFactory(
        ExecutionConfig(device="cuda"), resolver, {"conv": "fp16"}, open_session=opener
    )

    factory.get("conv")
    factory.get("matmul")  # no FP16 variant: its FP32 file is used on GPU too

    assert resolver.requests == [("conv", "fp16"), ("matmul", None)]
    stats = factory.stats()
    assert (stats["conv"]["provider"], stats["conv"]["precision"]) == (CUDA_PROVIDER, "fp16")
    assert stats["matmul"]["precision"] == "fp32"


def test_factory_uses_fp32_on_cpu_even_with_an_fp16_variant(stand_in_models: dict) -> None:
    resolver = RecordingResolver(stand_in_models)
    factory = SessionFactory(ExecutionConfig(), resolver, lambda model_id: "fp16")

    factory.get("conv")

    assert resolver.requests == [("conv", None)]
    assert factory.stats()["conv"]["precision"] == "fp32"


def test_factory_without_fallback_fails_clearly_on_this_cpu_only_machine(
    stand_in_models: dict,
) -> None:
    factory = SessionFactory(
        ExecutionConfig(device="cuda"), RecordingResolver(stand_in_models), {"conv": "fp16"}
    )

    with pytest.raises(ModelError, match="model conv: requested CUDAExecutionProvider but"):
        factory.get("conv")


def test_factory_falls_back_to_cpu_and_the_fp32_file(
    stand_in_models: dict, conv_input: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    resolver = RecordingResolver(stand_in_models)
    config = ExecutionConfig(device="tensorrt", allow_cpu_fallback=True)
    factory = SessionFactory(config, resolver, {"conv": "fp16"})

    outputs = factory.run("conv", {"input": conv_input})

    assert resolver.requests == [("conv", "fp16"), ("conv", None)]
    reference = ModelSession(stand_in_models["conv", None], "reference").run({"input": conv_input})
    np.testing.assert_array_equal(outputs[0], reference[0])
    stats = factory.stats()["conv"]
    assert (stats["provider"], stats["precision"]) == (CPU_PROVIDER, "fp32")
    assert stats["fallback"] is not None
    assert "requested TensorrtExecutionProvider" in stats["fallback"]
    assert stats["fallback"].startswith("requested TensorrtExecutionProvider")
    assert (tmp_path / "tensorrt").is_dir()


@pytest.mark.usefixtures("cuda_listed_as_available")
def test_out_of_memory_during_a_gpu_run_retries_once_on_cpu(
    stand_in_models: dict, conv_input: np.ndarray
) -> None:
    resolver = RecordingResolver(stand_in_models)
    opener = PretendGpuOpener(failing_runs=1)
    factory = SessionFactory(
        ExecutionConfig(device="cuda", allow_cpu_fallback=True),
        resolver,
        {"conv": "fp16"},
        open_session=opener,
    )
    assert factory.stats() == {}
    assert factory.get("conv").providers[0] == CUDA_PROVIDER

    outputs = factory.run("conv", {"input": conv_input})

    reference = ModelSession(stand_in_models["conv", None], "reference").run({"input": conv_input})
    np.testing.assert_array_equal(outputs[0], reference[0])
    assert opener.opened == [
        (stand_in_models["conv", "fp16"], CUDA_PROVIDER),
        (stand_in_models["conv", None], CPU_PROVIDER),
    ]
    assert resolver.requests == [("conv", "fp16"), ("conv", None)]
    stats = factory.stats()["conv"]
    assert (stats["provider"], stats["precision"], stats["calls"]) == (CPU_PROVIDER, "fp32", 1)
    assert stats["fallback"] is not None
    assert "CUDAExecutionProvider ran out of memory during a run" in stats["fallback"]
    # Later runs stay on CPU without reopening anything.
    factory.run_bound("conv", {"input": conv_input})
    assert len(opener.opened) == 2


def _conv_add_model(rng: np.random.Generator) -> onnx.ModelProto:
    weights = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    bias = rng.standard_normal((1, 4, 1, 1)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "weights"], ["convolved"], pads=[1, 1, 1, 1]),
            helper.make_node("Add", ["convolved", "bias"], ["output"]),
        ],
        "conv_add_stand_in",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, 16, 16])],
        [numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(bias, "bias")],
    )
    return _finish(graph)


def _matmul_add_model(rng: np.random.Generator) -> onnx.ModelProto:
    weights = rng.standard_normal((8, 4)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "weights"], ["projected"]),
            helper.make_node("Add", ["projected", "bias"], ["output"]),
        ],
        "matmul_add_stand_in",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 4])],
        [numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(bias, "bias")],
    )
    return _finish(graph)


def _finish(graph: onnx.GraphProto) -> onnx.ModelProto:
    # onnxruntime 1.31 rejects the IR version 14 that onnx 1.23 writes by default.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    onnx.checker.check_model(model)
    return model
